"""The URI options every machine-vision camera source takes (pylon://, genicam://), checked once."""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from device.sources.base import SourceError

# pixel formats delivered as they are (Mono10/12/16 as uint16, unscaled); colour ones become BGR
PIXEL_FORMATS = ("Mono8", "Mono10", "Mono12", "Mono16", "BGR8", "BGR8Packed", "RGB8", "RGB8Packed")
RGB_FORMATS = ("RGB8", "RGB8Packed")


class CameraSettings(BaseModel):
    """Exposure, gain, pixel format, region of interest, and frame rate or trigger."""

    model_config = ConfigDict(extra="forbid")

    exposure_us: float | None = Field(None, gt=0, description="Exposure time in µs (auto exposure is switched off)")
    gain: float | None = Field(None, description="Gain in dB (auto gain is switched off)")
    pixel_format: str | None = Field(None, description="Mono8, Mono10, Mono12, Mono16, BGR8 or RGB8")
    roi: str | None = Field(None, description="Region of interest x,y,width,height in sensor pixels")
    fps: float | None = Field(None, gt=0, description="Frame rate of the free-running camera")
    trigger: str | None = Field(None, description="software (a frame when the device asks), or a line: line1, line2...")
    timeout_s: float = Field(5.0, gt=0, description="No frame for this long (free-running) means the camera is lost")

    def region(self) -> tuple[int, int, int, int] | None:
        """`roi` as (x, y, width, height); SourceError when it is not four integers."""
        if self.roi is None:
            return None
        try:
            x, y, w, h = (int(v) for v in self.roi.split(","))
        except ValueError as exc:
            raise SourceError(f"roi={self.roi!r}: give x,y,width,height in pixels, e.g. roi=0,0,1024,768", permanent=True) from exc
        return x, y, w, h

    def check(self, name: str) -> None:
        """Settings that contradict each other, before any camera is asked."""
        if self.fps is not None and self.trigger:
            raise SourceError(f"{name}: give either fps (free-running) or trigger, not both", permanent=True)
        self.region()


Settings = TypeVar("Settings", bound=CameraSettings)


def parse_camera_uri(uri: str, settings_type: type[Settings]) -> tuple[str, Settings]:
    """`scheme://<camera id>?exposure_us=2000&pixel_format=Mono12` -> (id or "" for the first camera, settings)."""
    parts = urlsplit(uri)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    try:
        settings = settings_type.model_validate(query)
    except ValidationError as exc:
        error = exc.errors()[0]
        known = ", ".join(settings_type.model_fields)
        raise SourceError(f"{uri}: bad camera option {'.'.join(str(x) for x in error['loc'])}: {error['msg']} (options: {known})",
                          permanent=True) from exc
    return parts.netloc, settings


def out_of_range(name: str, setting: str, value: float, low: float, high: float, unit: str) -> SourceError | None:
    """The error for a value outside what the camera allows, None when it fits."""
    if low <= value <= high:
        return None
    return SourceError(f"{name}: {setting}={value:g} is out of range: this camera allows {low:g} to {high:g} {unit}", permanent=True)
