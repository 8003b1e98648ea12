"""Recognising and sizing image files before decoding them, so bombs and non-images are refused.

Width and height come from the file header (PNG IHDR, JPEG SOF, TIFF first page), so an upload of
a 100-gigapixel PNG is refused without allocating its pixels.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np

from device.datasets.package import DatasetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


SUFFIXES_OF_KIND = {"png": (".png",), "jpeg": (".jpg", ".jpeg"), "tiff": (".tif", ".tiff")}


@dataclass(frozen=True)
class ImageInfo:
    kind: str  # png | jpeg | tiff
    width: int
    height: int

    @property
    def suffixes(self) -> tuple[str, ...]:
        """File extensions that fit the content (first = the one to use when the name has another)."""
        return SUFFIXES_OF_KIND.get(self.kind, ())


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ValueError("PNG header is truncated")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            pos += 1
            continue
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            pos += 1 if marker == 0xFF else 2
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        pos += 2 + length
    raise ValueError("JPEG has no frame header")


def _tiff_size(data: bytes) -> tuple[int, int]:
    import tifffile

    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[0]
        shape = page.shape  # type: ignore[union-attr]
        axes = page.axes  # type: ignore[union-attr]
    return int(shape[axes.index("X")]), int(shape[axes.index("Y")])


def probe(data: bytes) -> ImageInfo:
    """Kind and size from the header; ValueError when the bytes are no PNG, JPEG or TIFF."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ImageInfo("png", *_png_size(data))
    if data.startswith(b"\xff\xd8"):
        return ImageInfo("jpeg", *_jpeg_size(data))
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        try:
            return ImageInfo("tiff", *_tiff_size(data))
        except Exception as exc:  # tifffile raises many types for broken files
            raise ValueError(f"TIFF cannot be read ({exc})") from exc
    raise ValueError("not a PNG, JPEG or TIFF image")


def check_image(data: bytes, name: str, max_pixels: int) -> ImageInfo:
    """Header checks and a full decode: raises DatasetError saying what is wrong with `name`."""
    try:
        info = probe(data)
    except ValueError as exc:
        raise DatasetError(f"{name}: {exc}; upload PNG, JPEG or TIFF images") from exc
    if info.width <= 0 or info.height <= 0:
        raise DatasetError(f"{name}: the header says the image is {info.width}x{info.height} pixels")
    if info.width * info.height > max_pixels:
        raise DatasetError(
            f"{name}: {info.width}x{info.height} = {info.width * info.height:,} pixels is over the limit of "
            f"{max_pixels:,}; downscale it or raise panel.max_image_pixels"
        )
    decode(data, name)
    return info


def decode(data: bytes, name: str = "image") -> np.ndarray:
    """The pixels at their original bit depth (16-bit stays 16-bit); a TIFF stack gives its first
    plane. TIFFs go through tifffile: OpenCV's libtiff prints a warning for every private tag a
    microscope vendor adds (9 per image from some phase-contrast cameras)."""
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return _decode_tiff(data, name)
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(f"{name}: the image data is corrupt and cannot be decoded")
    return np.asarray(image)


def _decode_tiff(data: bytes, name: str) -> np.ndarray:
    import tifffile

    from device.sources.tiffstack import to_frame_layout

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            return to_frame_layout(np.asarray(page.asarray()), str(page.axes))  # type: ignore[union-attr]
    except Exception as exc:  # tifffile raises many types for broken files
        raise DatasetError(f"{name}: the image data is corrupt and cannot be decoded ({exc})") from exc
