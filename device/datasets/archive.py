"""Reading and writing the zip archives that carry datasets in and out, safely.

Entries that would escape their folder (absolute paths, `..`, drive letters, symlinks) and
archives that inflate past a size budget (zip bombs) are refused before anything is extracted.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from device.datasets.imageinfo import IMAGE_SUFFIXES, check_image
from device.datasets.package import AnnotatedImage, DatasetError
from device.detections import Detections

MAX_UNPACKED_BYTES = 4 << 30
MAX_ENTRIES = 200_000


@dataclass
class ImportResult:
    """What an importer found: classes (id = index), annotated images, and every problem seen."""

    classes: list[str] = field(default_factory=list)
    images: list[AnnotatedImage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def check_entry_name(name: str) -> str:
    """The entry name if it stays inside the archive's folder; DatasetError otherwise."""
    clean = name.replace("\\", "/")
    parts = PurePosixPath(clean).parts
    if not clean or clean.startswith("/") or ".." in parts or (parts and parts[0].endswith(":")) or "\x00" in clean:
        raise DatasetError(f"archive entry '{name}' would escape its folder: the archive is refused")
    return clean


def read_zip(data: bytes, max_bytes: int = MAX_UNPACKED_BYTES) -> dict[str, bytes]:
    """All regular files of a zip, by their (checked) names."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"the upload is not a readable zip archive ({exc}): export the dataset as .zip") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise DatasetError(f"the archive has {len(infos)} entries, more than the limit of {MAX_ENTRIES}")
        total = 0
        files: dict[str, bytes] = {}
        for info in infos:
            name = check_entry_name(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DatasetError(f"archive entry '{name}' is a symbolic link: links are refused")
            if info.is_dir() or name.startswith("__MACOSX/") or PurePosixPath(name).name.startswith("."):
                continue
            total += info.file_size
            if total > max_bytes:
                raise DatasetError(f"the archive unpacks to more than {max_bytes >> 20} MB: split it into smaller parts")
            files[name] = archive.read(info)
    return files


def write_zip(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(check_entry_name(name), data)
    return buffer.getvalue()


def json_documents(files: Mapping[str, bytes], result: ImportResult) -> Iterator[tuple[str, Any]]:
    """Every .json entry that parses; the ones that don't are reported as problems."""
    for path, data in files.items():
        if not path.lower().endswith(".json"):
            continue
        try:
            yield path, json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            result.problems.append(f"{path}: not valid JSON ({exc})")


def image_files(files: Mapping[str, bytes], result: ImportResult) -> dict[str, bytes]:
    """Image entries by plain file name; two images with the same name in different folders is a problem."""
    images: dict[str, bytes] = {}
    where: dict[str, str] = {}
    for path, data in files.items():
        name = PurePosixPath(path).name
        if not name.lower().endswith(IMAGE_SUFFIXES):
            continue
        if name in images:
            result.problems.append(f"{path}: another image has the same file name ({where[name]}): rename one")
            continue
        images[name], where[name] = data, path
    return images


def checked_image(
    name: str, data: bytes, boxes: Detections, max_pixels: int, result: ImportResult, size: tuple[int, int] | None = None
) -> AnnotatedImage | None:
    """An AnnotatedImage if the image decodes and every box lies inside it; problems recorded otherwise."""
    try:
        info = check_image(data, name, max_pixels)
    except DatasetError as exc:
        result.problems.append(str(exc))
        return None
    if size is not None and size != (info.width, info.height):
        result.problems.append(f"{name}: annotations say {size[0]}x{size[1]} but the image is {info.width}x{info.height}")
        return None
    if len(boxes):
        xyxy = boxes.xyxy
        outside = (xyxy[:, 0] < -1) | (xyxy[:, 1] < -1) | (xyxy[:, 2] > info.width + 1) | (xyxy[:, 3] > info.height + 1)
        empty = (xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1])
        if outside.any() or empty.any():
            bad = xyxy[int((outside | empty).argmax())].round(1).tolist()
            result.problems.append(f"{name}: box {bad} is empty or outside the {info.width}x{info.height} image")
            return None
    return AnnotatedImage(name, data, info.width, info.height, boxes)


def boxes_from(name: str, rows: list[tuple[float, float, float, float, int]], result: ImportResult) -> Detections | None:
    """(x1, y1, x2, y2, class_id) rows -> Detections; a box with x2 < x1 is a problem of `name`."""
    if not rows:
        return Detections.empty()
    for row in rows:
        if row[2] < row[0] or row[3] < row[1]:
            result.problems.append(f"{name}: box {[round(v, 1) for v in row[:4]]} has x2 < x1 or y2 < y1")
            return None
    return Detections.from_lists([r[:4] for r in rows], class_ids=[r[4] for r in rows])
