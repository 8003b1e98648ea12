"""The dataset exchange formats the panel imports and exports, by key: coco, voc, yolo, via.

Each format maps annotated images to archive files and back. An import returns every problem
it found (per file) instead of stopping at the first, so a user fixes everything in one go; the
caller saves nothing unless the problem list is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from device.datasets.archive import ImportResult, read_zip, write_zip
from device.datasets.coco import export_coco, import_coco
from device.datasets.package import AnnotatedImage, DatasetError
from device.datasets.via import export_via, import_via
from device.datasets.voc import export_voc, import_voc
from device.datasets.yolo import export_yolo, import_yolo


@dataclass(frozen=True)
class DatasetFormat:
    key: str
    title: str
    export: Callable[[Sequence[AnnotatedImage], Sequence[str]], dict[str, bytes]]
    load: Callable[[Mapping[str, bytes], int], ImportResult]


FORMATS: dict[str, DatasetFormat] = {
    f.key: f
    for f in (
        DatasetFormat("coco", "COCO detection JSON", export_coco, import_coco),
        DatasetFormat("voc", "Pascal VOC XML (labelImg)", export_voc, import_voc),
        DatasetFormat("yolo", "YOLO txt", export_yolo, import_yolo),
        DatasetFormat("via", "VIA JSON (VGG Image Annotator 2)", export_via, import_via),
    )
}


def get_format(key: str) -> DatasetFormat:
    try:
        return FORMATS[key]
    except KeyError:
        raise DatasetError(f"unknown dataset format '{key}': choose one of {', '.join(FORMATS)}") from None


def export_archive(key: str, images: Sequence[AnnotatedImage], classes: Sequence[str]) -> bytes:
    """A zip of `images` in format `key`."""
    return write_zip(get_format(key).export(images, classes))


def import_archive(key: str, data: bytes, max_pixels: int) -> ImportResult:
    """Parse a zip in format `key`; unsafe archives raise DatasetError, content problems are listed."""
    result = get_format(key).load(read_zip(data), max_pixels)
    if not result.images and not result.problems:
        result.problems.append("the archive holds no annotated images")
    return result
