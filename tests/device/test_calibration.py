"""Which µm-per-pixel the device uses: the experiment's, else the file's own, else the config's."""

from __future__ import annotations

import numpy as np

from device.publish import Calibration
from device.sources.base import ImageMeta
from device.sources.capture import Frame


def _frame(um: float | None) -> Frame:
    return Frame(np.zeros((8, 8, 3), np.uint8), 0, 0.0, 0.0, ImageMeta(um_per_pixel=um))


def test_a_files_own_pixel_size_becomes_the_calibration_without_typing_it() -> None:
    calibration = Calibration(default=0.65)
    assert calibration() == 0.65
    calibration.seen(_frame(0.108))  # an OME-TIFF's PhysicalSizeX
    assert calibration() == 0.108
    calibration.seen(_frame(None))  # a plain frame again: the configured default
    assert calibration() == 0.65
