"""The capture section of the device config: how a lost source is retried."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaptureSettings(_Section):
    """How the capture thread retries a source that went away."""

    reconnect_min_s: float = Field(0.5, gt=0, description="First wait before reopening a lost source")
    reconnect_max_s: float = Field(30.0, gt=0, description="Longest wait between reopen attempts (exponential backoff)")
