"""The models section of the device config: the slots on the feed (`models`, beside the main `model`)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelSettings(BaseModel):
    """One model on the feed (a slot): the main `model`, or one of `models` beside it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", description="Name of this slot (panel, /healthz); the points' `model` tag is the bundle's name")
    bundle: str = Field(min_length=1, description="Model bundle (folder or .zip)")
    backend: str = Field("auto", description="Inference backend of this model (a key of the backend registry, as `backend`)")
    score_threshold: float | None = Field(None, ge=0, le=1, description="Override the bundle's default score threshold")
    every: int = Field(1, ge=1, le=1000, description="Analyse every k-th frame; the others record inference=skipped (no count)")
    overlay: bool = Field(True, description="Draw this model's boxes on the live stream")
    scale: Literal["auto", "card"] = Field(
        "auto", description="Frames of unknown µm per pixel: auto (estimate the objects' size from the frames and run at the "
        "scale that brings them to the size the model was trained at; `resize: tile` bundles with a baseline) or card "
        "(always the bundle's scale). A known µm per pixel (calibration, OME metadata) always sets the scale")


def parse_models(value: Any) -> Any:
    """`models` from the environment arrives as JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else []
        except json.JSONDecodeError as exc:
            raise ValueError(f"models must be a JSON list of {{name, bundle, ...}} objects: {exc}") from exc
    return value
