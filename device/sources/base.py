"""What every frame source looks like to the capture thread, and the pixel conversions they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np


class SourceError(RuntimeError):
    """A source that cannot deliver frames right now (or, when `permanent`, ever: a bad URI)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


Field = str | int | float


@dataclass(frozen=True)
class ImageMeta:
    """What a file or camera says about an image beyond its pixels: a lab's files already carry
    the pixel size, the acquisition time and where the plane sits in its stack."""

    um_per_pixel: float | None = None  # from the file (OME PhysicalSizeX/Y, ImageJ calibration)
    calibration: str = ""  # where um_per_pixel came from, for the report ("OME PhysicalSizeX/Y of run.ome.tif")
    acquired_at: float | None = None  # epoch seconds, from the file's own metadata
    fields: dict[str, Field] = field(default_factory=dict)  # for the frame's points: file, plane_t/z/c, stage_x_um...
    receipt: str = ""  # what the source journals once the frame is done (acquisition folders)


@dataclass(frozen=True)
class SourceImage:
    """An image with its metadata, as a source's `read()` may return it instead of a bare array."""

    image: np.ndarray
    meta: ImageMeta


class FrameSource(Protocol):
    """One camera, file, stream or folder. `live` sources run on their own clock (the capture
    thread keeps only the newest frame and counts drops); the others are read one frame ahead of
    the detector and never drop."""

    name: str
    live: bool

    def open(self) -> None:
        """Connect; raises SourceError when the source is not there (the capture thread retries)."""

    def read(self) -> np.ndarray | SourceImage | None:
        """The next image (original bit depth), with its metadata where the source has some; None
        at the end of a finite source; SourceError when broken."""

    def close(self) -> None:
        """Release the device or file handle; safe to call twice."""


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any frame (8/16-bit, grey/BGR/BGRA, float) as 8-bit BGR for models and rendering.

    16-bit microscope images often hold 10-, 12- or 14-bit data: the shift is chosen from the
    frame's largest value so a 12-bit camera uses the whole 8-bit range, and stays stable between
    frames of the same camera (no per-frame auto-contrast flicker)."""
    if image.dtype == np.uint16:
        top = int(image.max()) if image.size else 0
        bits = max(8, top.bit_length())
        image = (image >> (bits - 8)).astype(np.uint8)
    elif image.dtype != np.uint8:
        data = image.astype(np.float32)
        if data.size and float(data.max()) <= 1.0:
            data = data * 255.0
        image = np.clip(data, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image
