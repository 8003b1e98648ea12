"""The synthetic microscope as a frame source: the demo's camera and the tests' data."""

from __future__ import annotations

import time

import numpy as np

from device.sources.base import ImageMeta, SourceImage
from device.sources.synthetic import SyntheticConfig, SyntheticMicroscope
from device.sources.synthetic_base import ModalityConfig, ModalityScope
from device.sources.synthetic_modes import create_scope


class SyntheticSource:
    """With `fps` > 0 it behaves like a camera on its own clock (live: frames can be dropped);
    with fps = 0 it renders the next frame whenever the detector is ready (never drops)."""

    def __init__(self, config: SyntheticConfig | ModalityConfig, fps: float = 0.0) -> None:
        mode = "" if isinstance(config, SyntheticConfig) else f" {type(config).__name__.removesuffix('Config').lower()}"
        self.name = f"synthetic{mode} seed={config.seed} {config.width}x{config.height}"
        self.live = fps > 0
        self._config = config
        self._period = 1.0 / fps if fps > 0 else 0.0
        self._scope: SyntheticMicroscope | ModalityScope | None = None
        self._next = 0.0

    def open(self) -> None:
        if self._scope is None:
            self._scope = create_scope(self._config)
        self._next = time.monotonic()

    def read(self) -> np.ndarray | SourceImage | None:
        if self._scope is None:
            self.open()
        assert self._scope is not None
        if self._period:
            self._next += self._period
            delay = self._next - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                self._next = time.monotonic()
        frame = self._scope.read()
        if isinstance(self._scope, ModalityScope) and self._config.zooms:  # type: ignore[union-attr]
            return SourceImage(frame.image, ImageMeta(um_per_pixel=frame.um_per_pixel, calibration=f"synthetic zoom {self._scope.zoom:g}"))
        return frame.image

    def close(self) -> None:
        """Nothing to release; the scene keeps its state so a reopen continues the same sample."""
