"""Frames for hive tests: the synthetic microscope at the peak detector's size, replayed in order."""

from __future__ import annotations

import time

import numpy as np

from device.sources.synthetic import SyntheticMicroscope


def scope_frames(count: int, seed: int = 4) -> list[np.ndarray]:
    scope = SyntheticMicroscope(seed=seed, width=320, height=240)
    return [scope.read().image for _ in range(count)]


class PacedFrames:
    """A finite, non-live source (the loop takes every frame: none can be lost) at most one frame
    per `period` seconds, cycling `frames` `cycles` times."""

    name, live = "paced test frames", False

    def __init__(self, frames: list[np.ndarray], period: float = 0.0, cycles: int = 1) -> None:
        self.frames, self.period, self.total = frames, period, len(frames) * cycles
        self.n = 0

    def open(self) -> None:
        pass

    def read(self) -> np.ndarray | None:
        if self.n >= self.total:
            return None
        if self.period:
            time.sleep(self.period)
        self.n += 1
        return self.frames[(self.n - 1) % len(self.frames)]

    def close(self) -> None:
        pass
