"""A folder or glob of still images as a frame source (microscope software writing TIFFs, PNGs, JPEGs)."""

from __future__ import annotations

import glob
import logging
from pathlib import Path

import cv2
import numpy as np

from device.sources.base import SourceError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})


def read_image(path: Path) -> np.ndarray:
    """Decode one image at its original bit depth (16-bit TIFF/PNG stay 16-bit); ValueError if unreadable."""
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        try:
            image = np.asarray(tifffile.imread(path))
        except Exception as exc:  # tifffile raises many types for damaged files
            raise ValueError(f"{path}: not a readable TIFF ({exc})") from exc
        if image.ndim == 3 and image.shape[0] in (3, 4) and image.shape[2] not in (3, 4):
            image = np.moveaxis(image, 0, -1)  # planar (C, H, W) -> (H, W, C)
        if image.ndim == 3 and image.shape[2] in (3, 4):
            image = np.ascontiguousarray(image[:, :, [2, 1, 0]])  # TIFF is RGB, frames are BGR
        return image
    data = np.fromfile(path, np.uint8)
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if decoded is None:
        raise ValueError(f"{path}: not a readable image")
    image = np.asarray(decoded)
    return image


class ImageFolderSource:
    """Cycles through the images of a folder or glob in name order, re-listing on every pass so
    new files are picked up; a damaged or unreadable file is skipped and counted, never fatal."""

    live = False

    def __init__(self, pattern: str, loop: bool = True) -> None:
        self.name = pattern
        self._pattern = pattern
        self._loop = loop
        self._queue: list[Path] = []
        self.bad_files = 0

    def _listing(self) -> list[Path]:
        folder = Path(self._pattern)
        if folder.is_dir():
            files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        else:
            files = [Path(p) for p in glob.glob(self._pattern) if Path(p).suffix.lower() in IMAGE_SUFFIXES]
        return sorted(p for p in files if p.is_file())

    def open(self) -> None:
        self._queue = self._listing()
        if not self._queue:
            raise SourceError(f"{self._pattern}: no images (.png, .jpg, .tif) there yet")

    def read(self) -> np.ndarray | None:
        skipped = 0
        while True:
            if not self._queue:
                if not self._loop:
                    return None
                self.open()  # next pass: re-list, so new files join and a vanished folder is noticed
            path = self._queue.pop(0)
            try:
                return read_image(path)
            except (ValueError, OSError) as exc:
                self.bad_files += 1
                skipped += 1
                log.warning("skipping %s", exc)
                if skipped > 2 * len(self._listing()) + 2:
                    raise SourceError(f"{self._pattern}: no readable image left ({exc})") from exc

    def close(self) -> None:
        self._queue = []
