"""Settings of tracking, motility, crossing counts and concentration (the `tracking` config section)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

FLOW_RATE_UL_MIN = (1e-6, 1e6)  # 1 pL/min (nanofluidics) to 1 L/min: anything outside is a typo
DEPTH_UM = (0.01, 1e5)  # 10 nm to 10 cm


class TrackingSettings(BaseModel):
    """How objects are followed between frames and what is measured from their tracks."""

    # Infinity and NaN are refused everywhere (1e309 reads as Infinity and made every concentration 0.0);
    # the bounds refuse values no chamber or pump has, such as 1e-320 (a denormal: per µL overflows).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(True, description="Track objects between frames (unique counts, motility, crossings)")
    min_frames: int = Field(5, ge=1, le=10_000, description="Tracks seen in fewer frames are ignored (noise, flicker)")
    max_missed: int = Field(5, ge=0, le=1000, description="Frames a track may go unseen before it ends")
    gate_px: float = Field(20.0, gt=0, le=10_000, description="Farthest a detection may lie from a track's predicted position, pixels")
    smooth_frames: int = Field(5, ge=1, le=100, description="Positions averaged for the smoothed path (average path speed)")
    subtract_drift: bool = Field(True, description="Measure motility relative to the field (stage drift removed); off for flow")
    motile_speed: float = Field(5.0, ge=0, le=1e6, description="Tracks faster than this are motile: µm/s with um_per_pixel, else px/s")
    show_ids: bool = Field(True, description="Draw track ids on the live stream")
    interval_s: float = Field(10.0, gt=0, le=3600, description="Period of the crossing and track_summary points, seconds")
    line: tuple[float, float, float, float] | None = Field(None, description="Crossing line x1, y1, x2, y2 in frame pixels")
    flow_rate_ul_min: float | None = Field(None, ge=FLOW_RATE_UL_MIN[0], le=FLOW_RATE_UL_MIN[1],
                                           description="Volume flowing past the line, µL/min (1e-6 to 1e6): concentration per µL")
    depth_um: float | None = Field(None, ge=DEPTH_UM[0], le=DEPTH_UM[1],
                                   description="Chamber/channel depth, µm (0.01 to 100,000): imaged volume (with um_per_pixel)")

    @field_validator("line", mode="before")
    @classmethod
    def _line_from_text(cls, value: Any) -> Any:
        """Environment variables are text: SCOPEHIVE_TRACKING__LINE="640,0,640,960" (empty = none)."""
        if isinstance(value, str):
            text = value.strip().strip("[]()")
            return None if not text else tuple(part.strip() for part in text.split(","))
        return value
