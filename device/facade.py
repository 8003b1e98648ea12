"""The running device as the web side sees it: the whole DeviceRuntime protocol
(device/web_protocol.py) over the device's parts, so no blueprint reaches into the loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from device import __version__
from device.detections import Detections
from device.experiments.recorder import ExperimentRecorder
from device.health import health_report
from device.inbox.watch import Inbox
from device.models.bundle import ModelCard
from device.monitoring import configure_monitoring, monitoring_settings
from device.parts import DeviceParts
from device.redact import redact
from device.tracking.experiment import TrackLog
from device.tracking.settings import TrackingSettings
from device.tracking.stage import TrackingStage
from device.web_protocol import LatestFrame, NoModel


def hive_state(backend_state: dict[str, Any] | None) -> dict[str, Any] | None:
    """A remote model's hive in a few words for the pages: down (no endpoint ready) and why,
    the deadline in force and how it was chosen; None for a model that runs locally."""
    if backend_state is None:
        return None
    endpoints = backend_state.get("endpoints", [])
    down = not any(e.get("ready") for e in endpoints)
    why = "; ".join(f"{e['url']}: {e['reason']}" for e in endpoints if not e.get("ready"))
    return {"down": down, "reason": why, "local": backend_state.get("local"), "deadline_ms": backend_state.get("deadline_ms"),
            "deadline": backend_state.get("deadline")}


class DeviceFacade:
    """Implements DeviceRuntime; every answer is read from the parts when asked."""

    def __init__(self, parts: DeviceParts) -> None:
        self.parts = parts

    # ---- the newest frame ----------------------------------------------------------------------
    def latest(self) -> LatestFrame | None:
        return self.parts.board.latest()

    def annotated_jpeg(self, quality: int = 80) -> bytes | None:
        return self.parts.board.annotated_jpeg(quality)

    def set_class_colours(self, colours: dict[str, str]) -> None:
        """The panel's project colours by class name: the stream draws classes as the panel does."""
        self.parts.board.set_class_colours(colours)

    def live_stats(self) -> dict[str, Any]:
        """The board's counts (None when not analysed), quality, calibration, the experiment, health."""
        parts = self.parts
        latest = parts.board.latest()
        stats = latest.stats if latest else {}
        recorder = parts.experiments
        active = recorder.active if recorder is not None else None
        science = {"analysed": stats.get("analysed"), "focus": stats.get("focus"), "saturated_frac": stats.get("saturated_frac"),
                   "focus_reference": round(parts.feed.quality.gate.reference.value, 3),
                   "focus_gate": parts.config.quality.focus_relative_min,
                   "fov_mm2": stats.get("fov_mm2"), "um_per_pixel": parts.calibration(),
                   "experiment": active.public() if active else None}
        stage = parts.tracking()
        tracking = {"tracking": stage.live()} if stage is not None else {}
        health = self.health()
        board = parts.board.live_stats()
        for slot, model in board["feed"].items():
            model["hive"] = hive_state(health["hive"]["models"].get(slot))
        return {**board, **science, **{k: v for k, v in health.items() if k != "ok"}, **tracking}

    def history(self, seconds: float) -> list[dict[str, Any]]:
        return self.parts.outbox.history(seconds)

    def health(self) -> dict[str, Any]:
        return health_report(self.parts)

    # ---- the models ----------------------------------------------------------------------------
    def model_card(self) -> ModelCard | None:
        detector = self.parts.feed.detector
        return detector.card if detector else None

    def detect(self, image: np.ndarray) -> Detections:
        detector = self.parts.feed.detector
        if detector is None:
            raise NoModel("no model is loaded on this device: upload or choose one on the Models page")
        return detector.detect(image)

    def switch_model(self, bundle_path: Path) -> ModelCard:
        return self.parts.feed.switch_model(bundle_path)

    def feed_models(self) -> list[dict[str, Any]]:
        """The feed's models, each with the route its newest analysed frame took and, on the
        hive, whether the hive answers."""
        remote = self.health()["hive"]["models"]
        routes = self.parts.board.routes
        return [{**m, "route": routes.get(m["name"]), "hive": hive_state(remote.get(m["name"]))} for m in self.parts.feed.models()]

    def add_model(self, name: str, bundle_path: Path, every: int = 1, overlay: bool = True) -> ModelCard:
        return self.parts.feed.add_model(name, bundle_path, every, overlay)

    def remove_model(self, name: str) -> None:
        self.parts.feed.remove_model(name)

    def set_overlay(self, name: str, shown: bool) -> None:
        self.parts.feed.set_overlay(name, shown)

    # ---- experiments and tracking --------------------------------------------------------------
    def experiments(self) -> ExperimentRecorder | None:
        return self.parts.experiments

    def tracking(self) -> TrackingStage | None:
        return self.parts.tracking()

    def track_log(self) -> TrackLog | None:
        return self.parts.track_log

    def tracking_settings(self) -> TrackingSettings:
        return self.parts.config.tracking

    def inbox(self) -> Inbox | None:
        """The review inbox (None when switched off)."""
        return self.parts.inbox

    def model_checks(self) -> dict[str, Any]:
        """The drift alarm and review inbox settings in force."""
        return monitoring_settings(self.parts)

    def configure_model_checks(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change them while running (MonitoringError: nothing changed)."""
        return configure_monitoring(self.parts, changes)

    def provenance(self) -> dict[str, Any]:
        config, detector = self.parts.config, self.parts.feed.detector
        out: dict[str, Any] = {"software": __version__, "source": redact(config.source), "quality": config.quality.model_dump()}
        if detector is not None:
            card = detector.card
            out["model"] = {"name": card.name, "version": card.version, "sha256": detector.bundle.fingerprint(),
                            "metrics": card.metrics, "score_threshold": detector.threshold, "classes": card.classes}
        return out
