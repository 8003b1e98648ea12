"""Calibration profiles (µm per pixel for one objective on one camera) and the micrometer helper.

A profile is chosen when an experiment starts and copied into it, so editing a profile later never
rewrites the sizes of a finished experiment. The helper turns a line drawn over a stage micrometer
on a captured frame, plus its typed length, into µm per pixel.
"""

from __future__ import annotations

import math
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from device.printable import bidi_control

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_KEEP_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class ExperimentError(ValueError):
    """Bad input or a request that does not fit the current state; the message says what to do.
    The HTTP API answers it with 400 and changes nothing."""


def clean_text(value: str, what: str, max_len: int = 100, multiline: bool = False) -> str:
    """Stripped text without control characters (newlines and tabs allowed where `multiline`) or
    bidirectional overrides (device/printable.py)."""
    text = value.strip()
    pattern = _CONTROL_KEEP_LINES if multiline else _CONTROL
    if pattern.search(text):
        raise ValueError(f"{what} contains a control character: use printable text only")
    bidi = bidi_control(text)
    if bidi is not None:
        raise ValueError(f"{what} contains the bidirectional control character U+{ord(bidi):04X}, which makes text "
                         "display differently from what it is: remove it")
    if len(text) > max_len:
        raise ValueError(f"{what} is longer than {max_len} characters")
    return text


class CalibrationProfile(BaseModel):
    """µm per pixel of one objective on one camera (binning and adapters included)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=60, description="Unique name, e.g. '40x on cam A'")
    um_per_pixel: float = Field(gt=0, le=1000, description="Size of one pixel in the sample plane, µm")
    objective: str = Field("", max_length=60, description="Objective, e.g. '40x / 0.65'")
    camera: str = Field("", max_length=60, description="Camera, e.g. 'IMX477, 2x2 binning'")
    notes: str = Field("", max_length=500, description="How it was measured")

    @field_validator("name", "objective", "camera")
    @classmethod
    def _one_line(cls, value: str, info: object) -> str:
        text = clean_text(value, f"profile {getattr(info, 'field_name', 'field')}")
        if not text and getattr(info, "field_name", "") == "name":
            raise ValueError("profile name is empty")
        return text

    @field_validator("notes")
    @classmethod
    def _notes(cls, value: str) -> str:
        return clean_text(value, "profile notes", 500, multiline=True)

    @field_validator("um_per_pixel")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("um_per_pixel must be a finite number")
        return value

    def fov_mm2(self, width: int, height: int) -> float:
        """Field of view of a width x height frame, mm²."""
        return width * height * self.um_per_pixel**2 / 1e6


class MicrometerLine(BaseModel):
    """A line drawn over a stage micrometer on a frame (pixel coordinates) and its true length."""

    model_config = ConfigDict(extra="forbid")

    x1: float
    y1: float
    x2: float
    y2: float
    length_um: float = Field(description="True length of the line on the micrometer, µm (> 0)")

    def pixels(self) -> float:
        return math.hypot(self.x2 - self.x1, self.y2 - self.y1)

    def um_per_pixel(self) -> float:
        """µm per pixel, or ExperimentError for a zero-length line or a length that is not > 0."""
        if not all(math.isfinite(v) for v in (self.x1, self.y1, self.x2, self.y2, self.length_um)):
            raise ExperimentError("the line and its length must be finite numbers")
        if self.length_um <= 0:
            raise ExperimentError(f"the micrometer length must be more than 0 µm, got {self.length_um}")
        pixels = self.pixels()
        if pixels < 1.0:
            raise ExperimentError("the line is shorter than one pixel: draw it along the micrometer scale")
        return self.length_um / pixels
