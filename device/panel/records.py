"""The panel's records: projects, images and revision-numbered annotations, as stored (JSON)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import PurePosixPath

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from device.colours import PALETTE  # noqa: F401  (re-exported: one palette for panel and stream)


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
    name: str = Field(min_length=1, max_length=64, description="Class name as the model reports it")
    color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$", description="Box colour, #rrggbb")


class Project(_Model):
    slug: str = Field(description="Stable storage name; never changes on rename")
    name: str = Field(min_length=1, max_length=100, description="Display name")
    classes: list[ClassSpec] = Field(default_factory=list, description="Class id = index")
    created: datetime

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]


class Acquisition(_Model):
    """How a captured frame was taken: travels into the dataset package's manifest."""

    device: str = Field(description="The device's name (its metrics' `device` tag)")
    um_per_pixel: float | None = Field(None, description="Calibration at capture time; empty = not calibrated")
    source: str = Field(description="The source URI with its settings (credentials removed)")
    model: str | None = Field(None, description="The model the device ran (name:version)")
    frame_index: int | None = Field(None, description="Frame number since the device started")
    captured_at: datetime | None = Field(None, description="When the camera delivered the frame (UTC)")


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


class Box(_Model):
    x1: float
    y1: float
    x2: float
    y2: float
    class_id: int = Field(ge=0)

    @field_validator("x2", "y2")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not np.isfinite(value):
            raise ValueError("coordinates must be finite numbers")
        return value


class AnnotationDoc(_Model):
    revision: int = Field(0, ge=0, description="0 = never saved; +1 on every save")
    boxes: list[Box] = Field(default_factory=list)
    negative: bool = Field(False, description="Checked: the image has no objects (a real negative example)")
    updated: datetime | None = None

    @property
    def annotated(self) -> bool:
        return bool(self.boxes) or self.negative


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40]
    return slug or "project"


def safe_file_name(name: str) -> str:
    """A plain file name: folders dropped, odd characters replaced (no ../ can survive)."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip("._")
    return cleaned[:120] or "image"
