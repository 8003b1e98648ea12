"""Shared set-up of the device benchmarks: the demo model (or the test peak detector) and frames."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEMO_BUNDLE = ROOT / "device" / "models" / "demo"


def bench_bundle() -> tuple[Path, str]:
    """The committed demo bundle, or (before the trainer's lands) the onnx.helper peak detector."""
    if (DEMO_BUNDLE / "model.json").is_file():
        return DEMO_BUNDLE, "demo bundle (device/models/demo)"
    from tests.device.bundles import peak_detector_bundle

    folder = Path(tempfile.mkdtemp(prefix="bench-bundle-")) / "peaks"
    return peak_detector_bundle(folder), "test peak detector (device/models/demo not committed yet)"


def synthetic_frames(count: int, width: int = 1280, height: int = 960) -> list[np.ndarray]:
    from device.sources.synthetic import SyntheticMicroscope

    scope = SyntheticMicroscope(seed=0, width=width, height=height)
    return [scope.read().image for _ in range(count)]


class ReplaySource:
    """Pre-rendered frames, cycled: isolates the loop's own cost from the simulator's."""

    def __init__(self, frames: list[np.ndarray], fps: float = 0.0) -> None:
        import time

        self._time = time
        self.name, self.live = "replay", fps > 0
        self._frames, self._i = frames, 0
        self._period = 1.0 / fps if fps > 0 else 0.0
        self._next = 0.0

    def open(self) -> None:
        self._next = self._time.monotonic()

    def read(self) -> np.ndarray:
        if self._period:
            self._next += self._period
            delay = self._next - self._time.monotonic()
            if delay > 0:
                self._time.sleep(delay)
        self._i += 1
        return self._frames[self._i % len(self._frames)]

    def close(self) -> None:
        pass
