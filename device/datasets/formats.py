"""The dataset exchange formats the panel imports and exports, by key: coco, voc, yolo, via.

Each format maps annotated images to archive files and back. An import returns every problem
it found (per file) instead of stopping at the first, so a user fixes everything in one go; the
caller saves nothing unless the problem list is empty.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from device.datasets.archive import (
    MAX_UNPACKED_BYTES,
    ImportLimits,
    ImportResult,
    unpack,
    write_zip,
)
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
    uses: tuple[str, ...] = ()  # suffixes of the annotation files it reads (images are always read)


FORMATS: dict[str, DatasetFormat] = {
    f.key: f
    for f in (
        DatasetFormat("coco", "COCO detection JSON", export_coco, import_coco, (".json",)),
        DatasetFormat("voc", "Pascal VOC XML (labelImg)", export_voc, import_voc, (".xml", ".txt")),
        DatasetFormat("yolo", "YOLO txt", export_yolo, import_yolo, (".txt", ".names", ".yaml", ".yml")),
        DatasetFormat("via", "VIA JSON (VGG Image Annotator 2)", export_via, import_via, (".json",)),
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


def import_archive(
    key: str, source: bytes | IO[bytes], max_pixels: int, limits: ImportLimits | None = None, workdir: Path | None = None
) -> ImportResult:
    """Parse a zip in format `key`; unsafe or oversized archives raise DatasetError, content problems are listed.

    Only the entries the format uses are unpacked, streamed into a temporary folder (under
    `workdir` when given) that is removed before returning; images the result keeps are in memory.
    """
    fmt = get_format(key)
    limits = limits or ImportLimits.for_upload(MAX_UNPACKED_BYTES)
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="import-", dir=workdir) as tmp:
        result = fmt.load(unpack(source, Path(tmp), fmt.uses, limits), max_pixels)
    if not result.images and not result.problems:
        result.problems.append("the archive holds no annotated images")
    return result
