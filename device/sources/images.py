"""A folder or glob of still images as a frame source (microscope software writing TIFFs, PNGs, JPEGs)."""

from __future__ import annotations

import glob
import logging
from collections.abc import Generator
from pathlib import Path

import cv2
import numpy as np

from device.sources.base import ImageMeta, SourceError, SourceImage
from device.sources.tiffstack import tiff_planes

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})


def file_planes(path: Path, channel: int | str | None = None, skip: int = 0) -> Generator[SourceImage, None, None]:
    """The frames of one file at their original bit depth: every plane of a TIFF stack (with its
    indices and the file's calibration), or the one image of a PNG/JPEG/BMP; ValueError if unreadable."""
    if path.suffix.lower() in (".tif", ".tiff"):
        yield from tiff_planes(path, channel, skip)
        return
    if skip:
        return
    data = np.fromfile(path, np.uint8)
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if decoded is None:
        raise ValueError(f"{path}: not a readable image")
    yield SourceImage(np.asarray(decoded), ImageMeta(fields={"file": path.name}, receipt=path.name))


def read_image(path: Path) -> np.ndarray:
    """The first plane of an image file at its original bit depth (16-bit TIFF/PNG stay 16-bit)."""
    for plane in file_planes(path):
        return plane.image
    raise ValueError(f"{path}: holds no image")


class ImageFolderSource:
    """Cycles through the images of a folder or glob in name order (every plane of a TIFF stack
    in turn), re-listing on every pass so new files are picked up; a damaged or unreadable file
    is skipped and counted, never fatal. For a demo or a finished data set: live acquisitions
    want AcquisitionFolderSource (each file once, in order of arrival)."""

    live = False

    def __init__(self, pattern: str, loop: bool = True, channel: int | str | None = None) -> None:
        self.name = pattern
        self._pattern = pattern
        self._loop = loop
        self._channel = channel
        self._queue: list[Path] = []
        self._planes: Generator[SourceImage, None, None] | None = None
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

    def read(self) -> SourceImage | None:
        skipped = 0
        while True:
            if self._planes is None:
                if not self._queue:
                    if not self._loop:
                        return None
                    self.open()  # next pass: re-list, so new files join and a vanished folder is noticed
                self._planes = file_planes(self._queue.pop(0), self._channel)
            try:
                plane = next(self._planes, None)
            except (ValueError, OSError) as exc:
                plane = None
                self.bad_files += 1
                skipped += 1
                log.warning("skipping %s", exc)
                if skipped > 2 * len(self._listing()) + 2:
                    raise SourceError(f"{self._pattern}: no readable image left ({exc})") from exc
            if plane is not None:
                return plane
            self._planes = None  # the file is done (or broken): on to the next

    def close(self) -> None:
        self._queue = []
        if self._planes is not None:
            self._planes.close()
            self._planes = None
