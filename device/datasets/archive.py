"""Reading and writing the zip archives that carry datasets in and out, safely.

Entries that would escape their folder (absolute paths, `..`, drive letters, symlinks) refuse the
archive before anything is extracted. Imports stream only the entries their format uses to a work
folder, within a budget from the upload limit and free memory (device/safezip.py), so a zip
bomb is stopped at the budget instead of filling memory.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from device import safezip
from device.datasets.imageinfo import IMAGE_SUFFIXES, check_image
from device.datasets.package import AnnotatedImage, DatasetError
from device.detections import Detections
from device.safezip import UnzipLimits, available_memory

MAX_UNPACKED_BYTES = 4 << 30
MAX_ENTRIES = 200_000


@dataclass
class ImportResult:
    """What an importer found: classes (id = index), annotated images, and every problem seen."""

    classes: list[str] = field(default_factory=list)
    images: list[AnnotatedImage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


MAX_DOCUMENT_BYTES = 64 << 20  # one annotation file (JSON, XML, txt): parsing it takes several times this


@dataclass(frozen=True)
class ImportLimits:
    """How much an import may unpack: bounded by the upload limit and by the memory free now.

    Images are kept in memory until the import is saved, and image formats hardly compress, so
    a real dataset inflates to about its upload size; twice that (plus annotations) is generous.
    """

    unzip: UnzipLimits
    max_document: int = MAX_DOCUMENT_BYTES

    @classmethod
    def for_upload(cls, max_upload_bytes: int) -> ImportLimits:
        total = min(MAX_UNPACKED_BYTES, 2 * max_upload_bytes + MAX_DOCUMENT_BYTES, available_memory() // 2)
        return cls(UnzipLimits(max_total=total, max_entry=min(total, max(max_upload_bytes, MAX_DOCUMENT_BYTES)), max_entries=MAX_ENTRIES))


def check_entry_name(name: str) -> str:
    """The entry name if it stays inside the archive's folder; DatasetError otherwise."""
    try:
        return safezip.check_entry_name(name)
    except safezip.ArchiveError as exc:
        raise DatasetError(str(exc)) from None


class UnpackedFiles(Mapping[str, bytes]):
    """The extracted entries by name; bytes are read from disk only when asked for, one at a time."""

    def __init__(self, root: Path, names: list[str]) -> None:
        self.root = root
        self._names = sorted(names)

    def __getitem__(self, name: str) -> bytes:
        if name not in self._names:
            raise KeyError(name)
        return self.root.joinpath(*PurePosixPath(name).parts).read_bytes()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def unpack(source: bytes | IO[bytes], workdir: Path, suffixes: tuple[str, ...], limits: ImportLimits) -> UnpackedFiles:
    """Stream the entries a format uses (by suffix) into `workdir`; the rest are never read.

    Annotation files over `limits.max_document` are refused: they are parsed in memory.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    wanted = tuple(s.lower() for s in suffixes + IMAGE_SUFFIXES)
    try:
        names = safezip.extract(stream, workdir, lambda n: n.lower().endswith(wanted), limits.unzip)
    except safezip.ArchiveError as exc:
        raise DatasetError(str(exc)) from None
    files = UnpackedFiles(workdir, names)
    for name in names:
        if not name.lower().endswith(IMAGE_SUFFIXES):
            size = files.root.joinpath(*PurePosixPath(name).parts).stat().st_size
            if size > limits.max_document:
                raise DatasetError(f"{name} is {size >> 20} MB, more than the {limits.max_document >> 20} MB allowed for one annotation file")
    return files


def write_zip(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(check_entry_name(name), data)
    return buffer.getvalue()


def json_documents(files: Mapping[str, bytes], result: ImportResult) -> Iterator[tuple[str, Any]]:
    """Every .json entry that parses; the ones that don't are reported as problems."""
    for path in files:
        if not path.lower().endswith(".json"):
            continue
        try:
            yield path, json.loads(files[path])
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            result.problems.append(f"{path}: not valid JSON ({exc})")


class _ImagesByName(Mapping[str, bytes]):
    """Plain file name -> image bytes, read from the archive's files only when asked for."""

    def __init__(self, files: Mapping[str, bytes], where: dict[str, str]) -> None:
        self._files, self._where = files, where

    def __getitem__(self, name: str) -> bytes:
        return self._files[self._where[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


def image_files(files: Mapping[str, bytes], result: ImportResult) -> Mapping[str, bytes]:
    """Image entries by plain file name; two images with the same name in different folders is a problem."""
    where: dict[str, str] = {}
    for path in files:
        name = PurePosixPath(path).name
        if not name.lower().endswith(IMAGE_SUFFIXES):
            continue
        if name in where:
            result.problems.append(f"{path}: another image has the same file name ({where[name]}): rename one")
            continue
        where[name] = path
    return _ImagesByName(files, where)


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
