"""The `fleet` section of the device config: follow the model balena assigns to this device.

Environment variables (balena device/fleet variables): SCOPEHIVE_FLEET__ENABLED,
SCOPEHIVE_FLEET__DEVICE_TYPE, SCOPEHIVE_FLEET__MODEL_REF, SCOPEHIVE_FLEET__STORE,
SCOPEHIVE_FLEET__POLL_INTERVAL_S, SCOPEHIVE_FLEET__API_URL, SCOPEHIVE_FLEET__UPLOAD_ENGINES.
The device's identity and key come from balena itself (BALENA_DEVICE_UUID, BALENA_API_KEY,
BALENA_API_URL, BALENA_DEVICE_TYPE, injected by the io.balena.features.balena-api label).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from device.metrics.points import name_problem


class FleetSettings(BaseModel):
    """How this device learns which model to run, and where it fetches it from."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Follow the model assigned to this device through balena device tags")
    device_type: str = Field("", description="Declared device type; empty = BALENA_DEVICE_TYPE (set by balena)")
    model_ref: str = Field("", description="name:version to run when this device has no assignment (fleet default)")
    store: str = Field("", description="Object store of published bundles, e.g. s3://scopehive?endpoint=minio:9000&secure=0")
    poll_interval_s: float = Field(30.0, gt=0, le=3600, description="How often the balena API is asked for this device's tags")
    api_url: str = Field("", description="balena API URL; empty = BALENA_API_URL (set by balena)")
    upload_engines: bool = Field(True, description="Upload TensorRT engines built here so devices of the same type reuse them")

    @field_validator("model_ref")
    @classmethod
    def _printable_ref(cls, value: str) -> str:
        """The fleet default becomes the model's folder and tags: no control characters (a newline
        would stop every InfluxDB write); the name:version form is checked when it is fetched."""
        problem = name_problem(value)
        if problem:
            raise ValueError(f"fleet.model_ref {value[:60]!r} {problem}")
        return value

    def resolved_device_type(self, environ: Mapping[str, str] | None = None) -> str:
        env = os.environ if environ is None else environ
        return self.device_type or env.get("BALENA_DEVICE_TYPE", "") or "unknown"
