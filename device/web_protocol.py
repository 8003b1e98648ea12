"""What the web side (live stream, panel) may ask of the running device: one small protocol.

The device's facade (device/facade.py) implements it completely; the panel and stream blueprints
only ever see this, through `current_app.extensions["scopehive.runtime"]`, so they can be tested
with any object that honours it and never reach into the frame loop's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from device.detections import Detections
from device.models.bundle import ModelCard

if TYPE_CHECKING:
    from device.analysis import Analysis
    from device.experiments.recorder import ExperimentRecorder
    from device.tracking.experiment import TrackLog
    from device.tracking.settings import TrackingSettings
    from device.tracking.stage import TrackingStage


class NoModel(LookupError):
    """No model is loaded: there is nothing to detect with (never an empty result)."""


@dataclass(frozen=True)
class LatestFrame:
    """The newest processed frame: the original pixels (full resolution, original bit depth).

    `detections`/`classes`/`stats` are the main model's (the first pipeline), and `detections` is
    None when the main model did not analyse this frame (never an empty "zero"); `analyses` holds
    every model's result, including the ones that did not analyse this frame."""

    image: np.ndarray
    detections: Detections | None
    captured_at: float  # time.time() when the frame was captured
    index: int
    classes: tuple[str, ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)
    analyses: tuple[Analysis, ...] = ()


class DeviceRuntime(Protocol):
    def latest(self) -> LatestFrame | None:
        """The newest frame with its detections, or None before the first frame."""

    def annotated_jpeg(self, quality: int = 80) -> bytes | None:
        """The newest frame drawn with boxes, counts and FPS, as JPEG (encoded on demand)."""

    def live_stats(self) -> dict[str, Any]:
        """Current FPS, latency, counts per class, source and model state (JSON-ready)."""

    def history(self, seconds: float) -> list[dict[str, Any]]:
        """Recent per-frame statistics from the local store, oldest first (JSON-ready)."""

    def health(self) -> dict[str, Any]:
        """{'ok': bool, 'camera': {...}, 'model': {...}, 'outbox': {...}}"""

    def model_card(self) -> ModelCard | None:
        """The model the detector runs now."""

    def switch_model(self, bundle_path: Path) -> ModelCard:
        """Load, validate and warm the bundle, then swap it in; raises BundleError and keeps
        the old model running when the new one is bad."""

    def feed_models(self) -> list[dict[str, Any]]:
        """Every model on the feed: name, label, every, overlay, backend, error (main first)."""

    def add_model(self, name: str, bundle_path: Path, every: int = 1, overlay: bool = True) -> ModelCard:
        """Run one more model beside the others; raises BundleError (nothing changes) when bad,
        ValueError when the name is taken."""

    def remove_model(self, name: str) -> None:
        """Stop one model beside the main one; KeyError when unknown, ValueError for 'main'."""

    def set_overlay(self, name: str, shown: bool) -> None:
        """Draw (or not) this model's boxes on the stream; KeyError when unknown."""

    def set_class_colours(self, colours: dict[str, str]) -> None:
        """Draw classes (by name) in these #rrggbb colours on the stream and snapshot."""

    def detect(self, image: np.ndarray) -> Detections:
        """Run the current model on one image (pre-annotation); boxes in that image's pixels.
        Raises NoModel when none is loaded."""

    def experiments(self) -> ExperimentRecorder | None:
        """The experiment recorder, or None on a device without an experiment store."""

    def tracking(self) -> TrackingStage | None:
        """The main model's tracking stage (counting line, flow settings), or None when off."""

    def track_log(self) -> TrackLog | None:
        """Tracks and crossings of experiments (for their summary), or None when tracking is off."""

    def tracking_settings(self) -> TrackingSettings:
        """The configured tracking settings (the summary's motile threshold)."""

    def provenance(self) -> dict[str, Any]:
        """What produces the numbers now: model (name, version, sha256, metrics, threshold,
        classes), quality gates, source; fixed into an experiment when it starts."""
