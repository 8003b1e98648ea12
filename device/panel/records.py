"""The panel's records: projects, images and revision-numbered annotations, as stored (JSON)."""

from __future__ import annotations

import contextlib
import logging
import re
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from device.colours import PALETTE  # noqa: F401  (re-exported: one palette for panel and stream)

log = logging.getLogger(__name__)


class PanelError(ValueError):
    """Something a user asked for that cannot be done; the message says why and what to do."""


class ConflictError(PanelError):
    """The annotation changed since the client read it (another tab or person saved first)."""

    def __init__(self, current: AnnotationDoc) -> None:
        super().__init__(
            f"this image was changed elsewhere (now at revision {current.revision}); reload to see the latest boxes"
        )
        self.current = current


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClassSpec(_Model):
    id: int = Field(ge=0, description="Stable id that boxes refer to; never reused, never renumbered")
    name: str = Field(min_length=1, max_length=64, description="Class name as the model reports it")
    color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$", description="Box colour, #rrggbb")


class Project(_Model):
    slug: str = Field(description="Stable storage name; never changes on rename")
    name: str = Field(min_length=1, max_length=100, description="Display name")
    classes: list[ClassSpec] = Field(
        default_factory=list, description="In model/export order; boxes refer to ClassSpec.id, not to the position"
    )
    next_class_id: int = Field(0, ge=0, description="Id the next new class gets (ids are never reused)")
    created: datetime

    @model_validator(mode="before")
    @classmethod
    def _stable_class_ids(cls, data: Any) -> Any:
        """Projects stored before stable ids meant id = list position, so that is what they get."""
        if isinstance(data, dict) and isinstance(data.get("classes"), list):
            classes = [dict(c, id=i) if isinstance(c, dict) and "id" not in c else c for i, c in enumerate(data["classes"])]
            ids = [c.get("id", 0) for c in classes if isinstance(c, dict)]
            floor = max((i + 1 for i in ids if isinstance(i, int)), default=0)
            data = dict(data, classes=classes, next_class_id=max(int(data.get("next_class_id") or 0), floor))
        return data

    @model_validator(mode="after")
    def _unique_ids(self) -> Project:
        if len({c.id for c in self.classes}) != len(self.classes):
            raise ValueError("class ids must be unique")
        return self

    @property
    def class_names(self) -> list[str]:
        """Names in model/export order (position = the exported class index)."""
        return [c.name for c in self.classes]

    def class_by_id(self, class_id: int) -> ClassSpec | None:
        return next((c for c in self.classes if c.id == class_id), None)

    def export_index(self) -> dict[int, int]:
        """Stable class id -> position in `classes`: what exports and the trainer call the class id."""
        return {c.id: i for i, c in enumerate(self.classes)}

    def id_of(self, name: str) -> int | None:
        return next((c.id for c in self.classes if c.name == name), None)


class Acquisition(_Model):
    """How a captured frame was taken: travels into the dataset package's manifest."""

    device: str = Field(description="The device's name (its metrics' `device` tag)")
    um_per_pixel: float | None = Field(None, description="Calibration at capture time; empty = not calibrated")
    source: str = Field(description="The source URI with its settings (credentials removed)")
    model: str | None = Field(None, description="The model the device ran (name:version)")
    frame_index: int | None = Field(None, description="Frame number since the device started")
    captured_at: datetime | None = Field(None, description="When the camera delivered the frame (UTC)")


class SpotModel(_Model):
    """What one model on the feed counted on a spot-checked frame (the model's side of count QC)."""

    pipeline: str = Field(description="The feed slot that ran the model (main, or a model beside it)")
    name: str
    version: str
    counts: dict[str, int] = Field(description="Objects of each of the model's classes, after its thresholds")


class SpotCheck(_Model):
    """A frame the review inbox kept at random and a person reviewed: its annotation is the
    person's count that count QC pairs with each model's (device/inbox/qc.py)."""

    inbox_id: str
    kept_at: datetime = Field(description="When the device kept the frame")
    models: list[SpotModel]


class ImageMeta(_Model):
    id: str
    file_name: str = Field(description="Plain file name used in exports; unique in the project")
    width: int
    height: int
    dtype: str = Field(description="Pixel type of the original, e.g. uint8 or uint16")
    channels: int
    original: str = Field(description="Storage key of the untouched original")
    source: str = Field(description="capture, upload or import")
    created: datetime
    acquisition: Acquisition | None = Field(None, description="Device, calibration and source settings of a capture")
    spot_check: SpotCheck | None = Field(None, description="Set on a reviewed spot check of the review inbox")


MAX_BOXES = 10_000  # per image and save; dense microscopy fields have a few thousand


class Box(_Model):
    """Corners in original-image pixels. Strict: "12", true, NaN and infinity are refused (a NaN
    box makes the stored JSON unreadable for browsers and breaks every export of the project)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    x1: float = Field(allow_inf_nan=False)
    y1: float = Field(allow_inf_nan=False)
    x2: float = Field(allow_inf_nan=False)
    y2: float = Field(allow_inf_nan=False)
    class_id: int = Field(ge=0, description="ClassSpec.id of the project's class (stable, not a position)")


class AnnotationDoc(_Model):
    revision: int = Field(0, ge=0, description="0 = never saved; +1 on every save")
    boxes: list[Box] = Field(default_factory=list, max_length=MAX_BOXES)
    negative: bool = Field(False, description="Checked: the image has no objects (a real negative example)")
    updated: datetime | None = None

    @property
    def annotated(self) -> bool:
        return bool(self.boxes) or self.negative


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40]
    return slug or "project"


FILE_NAME_MAX = 120


def safe_file_name(name: str, suffixes: tuple[str, ...] = ()) -> str:
    """A plain file name of at most 120 characters: folders dropped, odd characters replaced (no ../
    can survive), the extension kept when the stem is cut. `suffixes`: the extensions the sniffed
    content allows (first = default), so a PNG uploaded as `x.exe` is stored as `x.png`."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip("._") or "image"
    path = PurePosixPath(cleaned)
    stem, suffix = (path.stem, path.suffix.lower()) if path.suffix else (cleaned, "")
    if suffixes and suffix not in suffixes:
        stem, suffix = (stem if suffix else cleaned), suffixes[0]
    suffix = suffix[:16]
    return (stem[: FILE_NAME_MAX - len(suffix)] or "image") + suffix


def salvage_annotation(key: str, raw: object) -> AnnotationDoc:
    """An annotation stored before boxes were checked (NaN corners...): keep the valid boxes, log the rest.

    One bad box must not make the image, the page and every export of the project fail.
    """
    data = raw if isinstance(raw, dict) else {}
    good: list[Box] = []
    for item in data.get("boxes") or []:
        with contextlib.suppress(ValidationError):
            good.append(Box.model_validate(item))
    stored = data.get("revision")
    revision = stored if isinstance(stored, int) else 0
    log.error("%s holds invalid boxes; %d valid ones are used and the next save drops the rest", key, len(good))
    return AnnotationDoc(revision=max(0, revision), boxes=good[:MAX_BOXES], negative=bool(data.get("negative")) and not good)
