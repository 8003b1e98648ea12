"""The panel's settings section of the device config (minimal placeholder until the panel lands)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PanelSettings(BaseModel):
    """Login, uploads and storage of the web panel."""

    model_config = ConfigDict(extra="forbid")

    password_env: str = Field("SCOPEHIVE_PANEL_PASSWORD", description="Environment variable holding the panel password")
    max_upload_mb: int = Field(200, gt=0, description="Largest upload accepted, in MB")
    storage: str = Field("", description="Object storage URL (s3://...) or folder; empty = a folder in the data dir")
