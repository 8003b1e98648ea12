"""Settings of the hive: remote inference servers (Triton / KServe v2)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Backend keys are the registry's (device/inference/backend.py), which imports this module, so
# `local_backend` is checked against it by the device config (device/config.py), not here.


class HiveSettings(BaseModel):
    """Where the `triton` backend sends frames, and when it gives up and runs the local model."""

    model_config = ConfigDict(extra="forbid")

    endpoints: list[str] = Field(default_factory=list, description="KServe v2 HTTP endpoints of hive GPU servers, e.g. http://hive-gpu-1:8000 (comma-separated in the environment)")
    transport: Literal["tensor", "jpeg"] = Field("tensor", description="Send the preprocessed float tensor, or the fitted frame as JPEG (decoded on the server; ~20x fewer bytes)")
    jpeg_quality: int = Field(95, ge=50, le=100, description="JPEG quality when transport is jpeg (95: counts within one object of the tensor path on the demo model; 90: within two, 40 % fewer bytes)")
    deadline_periods: float = Field(1.5, gt=0, le=20, description="Least per-frame deadline, in frame periods of the source; past the deadline the frame runs on the local model")
    latency_factor: float = Field(2.5, ge=0, le=20, description="The deadline follows the endpoint's measured round trip: this many times its median (of the last 20 frames), never under deadline_periods; 0 = deadline_periods alone")
    deadline_max_ms: float = Field(1000.0, gt=0, le=60_000, description="Most a measured deadline may grow to, and the deadline before any round trip was measured")
    deadline_ms: float | None = Field(None, gt=0, description="Fixed per-frame deadline in ms instead of the measured one")
    probe_interval_s: float = Field(2.0, gt=0, le=300, description="How often every endpoint's readiness is checked (/v2/health/ready, model ready)")
    local_backend: str = Field("auto", description="Local backend used when the hive is slow, gone or answers malformed outputs: auto or a backend that runs on the device ('none': frames are then recorded as not analysed)")

    @field_validator("endpoints", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("endpoints")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"endpoint '{url}' must start with http:// or https:// (the KServe v2 HTTP port, 8000 on Triton)")
        return [url.rstrip("/") for url in value]
