"""Writing (and re-reading) the dataset package, the one file that travels from panel to trainer.

Layout of the zip (format version 1, see docs/formats.md):
    manifest.json       DatasetManifest
    annotations.json    COCO detection: images, annotations (bbox = x, y, w, h), categories
    images/<file_name>  the original images, byte for byte
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from device.detections import Detections

DATASET_FORMAT = "scopehive-dataset"
DATASET_FORMAT_VERSION = 1
PACKAGE_MODE = 0o644


class DatasetError(ValueError):
    """A dataset package that cannot be used; the message says which file and field, and why."""


class DatasetManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str = Field(DATASET_FORMAT, description="Always 'scopehive-dataset'")
    format_version: int = Field(DATASET_FORMAT_VERSION, description="Bumped on incompatible change")
    project: str = Field(min_length=1, description="Project the images belong to")
    classes: list[str] = Field(min_length=1, description="Class names; COCO category id = index + 1")
    created: datetime = Field(description="When the package was written (UTC)")
    image_count: int = Field(ge=0, description="Number of files under images/")
    images: dict[str, str] = Field(description="file name under images/ -> sha256 hex of its bytes")
    acquisition: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="file name -> how it was captured: device, um_per_pixel, source URI with its settings, model, time",
    )

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value != DATASET_FORMAT:
            raise ValueError(f"expected '{DATASET_FORMAT}', got '{value}'")
        return value

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("class names must be unique")
        return value


@dataclass(frozen=True)
class AnnotatedImage:
    """One image as it goes into a package: encoded bytes plus its boxes in pixels."""

    file_name: str
    data: bytes
    width: int
    height: int
    boxes: Detections
    acquisition: dict[str, Any] | None = None  # device, um_per_pixel, source settings (captures)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _safe_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\x00" in name:
        raise DatasetError(f"image file name '{name}' is not allowed: use a plain name without folders")
    return name


def coco_document(images: Sequence[AnnotatedImage], classes: Sequence[str]) -> dict[str, object]:
    coco_images: list[dict[str, object]] = []
    annotations: list[dict[str, object]] = []
    for image_id, image in enumerate(images, start=1):
        coco_images.append(
            {"id": image_id, "file_name": image.file_name, "width": image.width, "height": image.height}
        )
        xywh = image.boxes.to_xywh()
        for (x, y, w, h), class_id in zip(xywh.tolist(), image.boxes.class_ids.tolist(), strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(class_id) + 1,
                    "bbox": [round(x, 3), round(y, 3), round(w, 3), round(h, 3)],
                    "area": round(w * h, 3),
                    "iscrowd": 0,
                }
            )
    categories = [{"id": i + 1, "name": name, "supercategory": "object"} for i, name in enumerate(classes)]
    return {"images": coco_images, "annotations": annotations, "categories": categories}


def write_dataset_package(
    path: str | os.PathLike[str], project: str, classes: Sequence[str], images: Iterable[AnnotatedImage]
) -> DatasetManifest:
    """Write the zip atomically: a half-written package never appears under `path`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    written: list[AnnotatedImage] = []
    digests: dict[str, str] = {}
    acquired: dict[str, dict[str, Any]] = {}
    fd, tmp_name = tempfile.mkstemp(prefix=".partial-", suffix=".zip", dir=target.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp_name, "w", zipfile.ZIP_STORED) as archive:
            for image in images:
                name = _safe_name(image.file_name)
                if name in digests:
                    raise DatasetError(f"image file name '{name}' appears twice")
                archive.writestr(f"images/{name}", image.data)
                digests[name] = sha256(image.data)
                if image.acquisition:
                    acquired[name] = image.acquisition
                written.append(AnnotatedImage(name, b"", image.width, image.height, image.boxes))
            manifest = DatasetManifest(
                project=project,
                classes=list(classes),
                created=datetime.now(timezone.utc),
                image_count=len(written),
                images=digests,
                acquisition=acquired,
            )
            archive.writestr("annotations.json", json.dumps(coco_document(written, classes), indent=1))
            archive.writestr("manifest.json", manifest.model_dump_json(indent=2))
        os.chmod(tmp_name, PACKAGE_MODE)  # mkstemp makes it 0600: a trainer under another uid could not read it
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return manifest


def read_manifest(path: str | os.PathLike[str]) -> DatasetManifest:
    """Read and validate just the manifest (cheap: used to list packages)."""
    try:
        with zipfile.ZipFile(path) as archive:
            raw = archive.read("manifest.json")
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{path}: not a readable zip archive ({exc})") from exc
    except KeyError as exc:
        raise DatasetError(f"{path}: manifest.json is missing") from exc
    try:
        return DatasetManifest.model_validate_json(raw)
    except ValidationError as exc:
        raise DatasetError(f"{path}: manifest.json is invalid: {_first_errors(exc)}") from exc


def _first_errors(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        parts.append(f"field '{where}': {error['msg']}")
    return "; ".join(parts)


def synthetic_images(count: int, seed: int = 0, width: int = 640, height: int = 480, mode: str = "brightfield",
                     **options: object) -> Iterable[AnnotatedImage]:
    """Fresh synthetic scenes as PNG-encoded AnnotatedImages (a new sample for every image)."""
    import cv2

    from device.sources.synthetic_modes import create_scope, mode_config

    scope = create_scope(mode_config(mode, {"seed": seed, "width": width, "height": height, **options}))
    for i in range(count):
        if i:
            scope.new_scene()
        frame = scope.read()
        ok, encoded = cv2.imencode(".png", frame.image)
        if not ok:
            raise RuntimeError("OpenCV could not encode a PNG")
        acquisition = None
        if getattr(scope.config, "zooms", ""):  # mixed magnifications: each frame says its pixel size
            acquisition = {"device": "synthetic", "um_per_pixel": frame.um_per_pixel, "source": f"synthetic://?mode={mode}",
                           "zoom": getattr(scope, "zoom", 1.0)}
        yield AnnotatedImage(f"synthetic_{seed:04d}_{i:05d}.png", encoded.tobytes(), width, height, frame.truth, acquisition)


def write_synthetic_package(path: str | os.PathLike[str], count: int, seed: int = 0, width: int = 640, height: int = 480,
                            mode: str = "brightfield", **options: object) -> DatasetManifest:
    """A ready-to-train dataset package of `count` synthetic frames with exact boxes, of one mode
    (brightfield, blood, fluorescence, phase: see device/sources/synthetic_modes.py)."""
    from device.sources.synthetic_modes import mode_classes

    images = synthetic_images(count, seed, width, height, mode, **options)
    return write_dataset_package(path, "synthetic" if mode == "brightfield" else f"synthetic-{mode}", mode_classes(mode), images)


def load_package_boxes(path: str | os.PathLike[str]) -> dict[str, Detections]:
    """file name -> boxes, straight from annotations.json (used by tests and the panel's import)."""
    with zipfile.ZipFile(path) as archive:
        coco = json.load(io.BytesIO(archive.read("annotations.json")))
    by_id = {img["id"]: img["file_name"] for img in coco["images"]}
    grouped: dict[str, list[tuple[list[float], int]]] = {name: [] for name in by_id.values()}
    for ann in coco["annotations"]:
        grouped[by_id[ann["image_id"]]].append((ann["bbox"], ann["category_id"] - 1))
    return {
        name: Detections.from_xywh(
            np.asarray([b for b, _ in items], np.float32).reshape(-1, 4),
            class_ids=np.asarray([c for _, c in items], np.int32),
        )
        for name, items in grouped.items()
    }
