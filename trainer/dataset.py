"""Reading and validating a dataset package (panel -> trainer), see docs/formats.md section 1.

Everything that can be wrong with a package is collected into one `DatasetError` listing every
problem (file and field), so a microscopist fixes their export once instead of once per run.
The trainer keeps its own pydantic models of the format; what pixels a frame of more than 8 bits
becomes is the one rule the device runs too (device/inference/pixels.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from device.inference.pixels import TRAINED, PixelRule, to_uint8

DATASET_FORMAT = "scopehive-dataset"
DATASET_FORMAT_VERSION = 1
_MAX_LISTED = 12


class DatasetError(ValueError):
    """A dataset package that cannot be trained on; the message lists what is wrong and how to fix it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Manifest(_Strict):
    format: str = Field(description="Always 'scopehive-dataset'")
    format_version: int = Field(description="Format major version")
    project: str = Field(min_length=1)
    classes: list[str] = Field(min_length=1, description="COCO category id = index + 1")
    created: datetime
    image_count: int = Field(ge=0)
    images: dict[str, str] = Field(description="file name -> sha256 hex")
    acquisition: dict[str, dict[str, Any]] = Field(default_factory=dict, description="file name -> device, um_per_pixel, source settings")


class CocoImage(BaseModel):
    model_config = ConfigDict(extra="ignore")  # COCO tools add license/url fields; they are harmless
    id: int
    file_name: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class CocoAnnotation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]


class CocoDocument(BaseModel):
    model_config = ConfigDict(extra="ignore")
    images: list[CocoImage]
    annotations: list[CocoAnnotation]
    categories: list[dict[str, object]] = Field(default_factory=list)


@dataclass(frozen=True)
class Sample:
    """One annotated image, decoded: RGB uint8 pixels and boxes (x1, y1, x2, y2) in pixels.

    `raw` keeps the original pixels of a frame over 8 bits (BGR order, as decoded), so a bundle
    with another pixel rule is scored on what its device would see (`with_pixels`)."""

    file_name: str
    image: np.ndarray
    boxes: np.ndarray  # float32 [M, 4]
    classes: np.ndarray  # int32 [M], index into Dataset.classes
    raw: np.ndarray | None = None
    acquisition: dict[str, Any] | None = None  # the manifest's entry: device, um_per_pixel, source, frame_index, captured_at

    @property
    def um_per_pixel(self) -> float | None:
        value = (self.acquisition or {}).get("um_per_pixel")
        return float(value) if isinstance(value, int | float) and value > 0 else None


@dataclass(frozen=True)
class Dataset:
    project: str
    classes: list[str]
    samples: list[Sample]
    sha256: str


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"field '{'.'.join(str(p) for p in e['loc']) or '(top level)'}': {e['msg']}" for e in exc.errors()[:5]
    )


def _read_json(archive: zipfile.ZipFile, name: str, path: Path) -> bytes:
    try:
        return archive.read(name)
    except KeyError:
        raise DatasetError(f"{path}: {name} is missing: export the dataset again from the panel") from None


def _parse_manifest(raw: bytes, path: Path) -> Manifest:
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValidationError as exc:
        raise DatasetError(f"{path}: manifest.json is invalid: {_errors(exc)}") from exc
    if manifest.format != DATASET_FORMAT:
        raise DatasetError(f"{path}: manifest.json field 'format' is '{manifest.format}', expected '{DATASET_FORMAT}'")
    if manifest.format_version > DATASET_FORMAT_VERSION:
        raise DatasetError(
            f"{path}: manifest.json format_version {manifest.format_version} is newer than this trainer "
            f"understands ({DATASET_FORMAT_VERSION}): update the trainer"
        )
    if len(set(manifest.classes)) != len(manifest.classes):
        raise DatasetError(f"{path}: manifest.json field 'classes' has duplicate names: make them unique")
    return manifest


def _parse_coco(raw: bytes, path: Path) -> CocoDocument:
    try:
        return CocoDocument.model_validate(json.loads(raw))
    except (ValidationError, json.JSONDecodeError) as exc:
        detail = _errors(exc) if isinstance(exc, ValidationError) else str(exc)
        raise DatasetError(f"{path}: annotations.json is invalid: {detail}") from exc


def decode_raw(data: bytes) -> np.ndarray | None:
    """Any PNG/JPEG/TIFF at its own bit depth (BGR order, as OpenCV and the device read it)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return None if image is None or image.size == 0 else image


def decode_image(data: bytes, rule: PixelRule = TRAINED) -> np.ndarray | None:
    """Any PNG/JPEG/TIFF (8 or 16 bit, grey or colour) -> RGB uint8, or None if unreadable.

    Frames over 8 bits go through `rule` (device/inference/pixels.py), the conversion the
    bundle records and the device applies: a 16-bit image's useful range is usually a small
    slice of 0..65535, and the model must see it the same way in training and on the microscope.
    """
    image = decode_raw(data)
    return None if image is None else to_rgb8(image, rule)


def to_rgb8(image: np.ndarray, rule: PixelRule = TRAINED) -> np.ndarray:
    """A decoded frame (any depth, grey/BGR/BGRA) -> RGB uint8 through the pixel rule."""
    image = to_uint8(image, rule)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class _Checker:
    """Collects every problem in the package before failing, so the user sees them all at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []

    def add(self, problem: str) -> None:
        self.problems.append(problem)

    def raise_if_any(self) -> None:
        if not self.problems:
            return
        shown = self.problems[:_MAX_LISTED]
        more = len(self.problems) - len(shown)
        lines = "\n".join(f"  - {p}" for p in shown) + (f"\n  - ... and {more} more" if more > 0 else "")
        raise DatasetError(
            f"{self.path}: the dataset package has {len(self.problems)} problem(s):\n{lines}\n"
            "Fix the annotations in the panel (or your export) and export the package again."
        )


def _check_box(checker: _Checker, ann: CocoAnnotation, image: CocoImage, n_classes: int) -> bool:
    x, y, w, h = ann.bbox
    where = f"annotation {ann.id} on '{image.file_name}'"
    if not 1 <= ann.category_id <= n_classes:
        checker.add(f"{where}: unknown class (category_id {ann.category_id}; the manifest has {n_classes} classes)")
        return False
    if w <= 0 or h <= 0:
        checker.add(f"{where}: zero-size box {list(ann.bbox)} (width and height must be > 0)")
        return False
    tol = 1.0  # annotation tools round to the pixel grid
    if x < -tol or y < -tol or x + w > image.width + tol or y + h > image.height + tol:
        checker.add(f"{where}: box {list(ann.bbox)} lies outside the {image.width}x{image.height} image")
        return False
    return True


def _group_boxes(checker: _Checker, coco: CocoDocument, n_classes: int) -> dict[int, list[CocoAnnotation]]:
    images = {img.id: img for img in coco.images}
    grouped: dict[int, list[CocoAnnotation]] = {img.id: [] for img in coco.images}
    for ann in coco.annotations:
        image = images.get(ann.image_id)
        if image is None:
            checker.add(f"annotation {ann.id}: refers to image_id {ann.image_id}, which is not in 'images'")
        elif _check_box(checker, ann, image, n_classes):
            grouped[ann.image_id].append(ann)
    return grouped


def with_pixels(samples: list[Sample], rule: PixelRule) -> list[Sample]:
    """The samples as a bundle with `rule` sees them (frames over 8 bits converted again)."""
    return [replace(s, image=to_rgb8(s.raw, rule)) if s.raw is not None else s for s in samples]


def _to_sample(image: CocoImage, pixels: np.ndarray, anns: list[CocoAnnotation]) -> Sample:
    xywh = np.asarray([a.bbox for a in anns], np.float32).reshape(-1, 4)
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, image.width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, image.height)
    classes = np.asarray([a.category_id - 1 for a in anns], np.int32)
    return Sample(image.file_name, pixels, boxes, classes)


def _load_images(
    checker: _Checker, archive: zipfile.ZipFile, manifest: Manifest, coco: CocoDocument, raws: dict[int, np.ndarray]
) -> dict[int, np.ndarray]:
    """RGB pixels by image id; frames over 8 bits also keep their original pixels in `raws`."""
    names = set(archive.namelist())
    pixels: dict[int, np.ndarray] = {}
    for image in coco.images:
        entry = f"images/{image.file_name}"
        if entry not in names:
            checker.add(f"image '{image.file_name}' is listed in annotations.json but missing from images/")
            continue
        data = archive.read(entry)
        expected = manifest.images.get(image.file_name)
        if expected is None:
            checker.add(f"image '{image.file_name}' has no sha256 entry in manifest.json")
        elif hashlib.sha256(data).hexdigest() != expected:
            checker.add(f"image '{image.file_name}': sha256 does not match manifest.json (file damaged or replaced)")
            continue
        raw = decode_raw(data)
        decoded = None if raw is None else to_rgb8(raw, TRAINED)
        if decoded is None:
            checker.add(f"image '{image.file_name}' is corrupt or not an image OpenCV can read")
            continue
        if decoded.shape[:2] != (image.height, image.width):
            checker.add(
                f"image '{image.file_name}' is {decoded.shape[1]}x{decoded.shape[0]} but annotations.json "
                f"says {image.width}x{image.height}"
            )
            continue
        pixels[image.id] = decoded
        if raw is not None and raw.dtype != np.uint8:
            raws[image.id] = raw
    return pixels


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_dataset_package(path: str | os.PathLike[str]) -> Dataset:
    """Open, validate and decode a package; raises DatasetError listing every problem found."""
    source = Path(path)
    if not source.is_file():
        raise DatasetError(f"{source}: no such dataset package (give the .zip exported by the panel)")
    try:
        with zipfile.ZipFile(source) as archive:
            manifest = _parse_manifest(_read_json(archive, "manifest.json", source), source)
            coco = _parse_coco(_read_json(archive, "annotations.json", source), source)
            if not coco.images:
                raise DatasetError(f"{source}: the package holds no images: annotate some images and export again")
            checker = _Checker(source)
            grouped = _group_boxes(checker, coco, len(manifest.classes))
            raws: dict[int, np.ndarray] = {}
            pixels = _load_images(checker, archive, manifest, coco, raws)
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{source}: not a readable zip archive ({exc}): export the package again") from exc
    checker.raise_if_any()
    samples = [replace(_to_sample(img, pixels[img.id], grouped[img.id]), raw=raws.get(img.id),
                       acquisition=manifest.acquisition.get(img.file_name)) for img in coco.images]
    if not any(len(s.boxes) for s in samples):
        raise DatasetError(f"{source}: no image has any annotated object: there is nothing to learn from")
    return Dataset(manifest.project, list(manifest.classes), samples, _file_sha256(source))


def split_dataset(samples: list[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Seeded split that keeps near-copies (one acquisition, the same field) on one side and
    stratifies groups by their dominant class (trainer/split.py; `group_split` also says how
    far validation can be trusted)."""
    from trainer.split import group_split

    split = group_split(samples, val_fraction, seed)
    return split.train, split.val
