"""The drift stage of a model's pipeline: feeds the model's analysed frames to its DriftMonitor and
says when the alarm is raised or cleared (a `device_event`, kind `model_drift` / `model_drift_cleared`).

A frame the model did not look at (skipped, out of focus, over- or underexposed, failed) carries
no boxes and is passed on untouched: it never enters the window. A new model (another card)
starts a new monitor with that model's baseline, so no alarm spans two models.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from device.analysis import Analysis
from device.drift.baseline import card_baseline
from device.drift.monitor import OFF, DriftMonitor, DriftState
from device.drift.settings import DriftSettings
from device.sources.capture import Frame

log = logging.getLogger(__name__)

EventSink = Callable[[str, str, dict[str, str]], None]  # kind, message, tags -> a device_event
RAISED, CLEARED, LEARNT = "model_drift", "model_drift_cleared", "drift_baseline_learnt"


class DriftStage:
    """One pipeline's drift alarm. `state` is read by /healthz and the heartbeat from other threads
    (a frozen value, replaced whole)."""

    def __init__(self, settings: DriftSettings, events: EventSink | None = None) -> None:
        self.settings = settings
        self._events = events or (lambda kind, message, tags: None)
        self._card: object = None
        self._monitor: DriftMonitor | None = None
        self._slot = ""  # the pipeline's name, once it has run
        self.state = DriftState(OFF, "no model yet")

    def configure(self, settings: DriftSettings) -> None:
        """New windows and thresholds: the monitor restarts with them on the next analysed frame
        (a bundle without baseline learns it again)."""
        was_alarm = self.state.alarm
        self.settings = settings
        self._card, self._monitor = None, None
        self.state = DriftState(OFF, "restarting with new settings")
        if was_alarm:  # the window restarts: the alarm ends here, and is raised again if the change holds
            self._events(CLEARED, f"{self._slot}: drift settings changed, the window restarts", {"slot": self._slot})

    def __call__(self, frame: Frame, analysis: Analysis) -> Analysis:
        if not self.settings.enabled or analysis.detections is None or analysis.card is None:
            return analysis  # not analysed: never fed (docs/drift.md)
        if analysis.card is not self._card:
            self._card, self._slot = analysis.card, analysis.pipeline
            baseline, why = card_baseline(analysis.card.metrics)
            self._monitor = DriftMonitor(self.settings, analysis.card.classes, baseline, why)
        assert self._monitor is not None
        happened = self._monitor.observe(analysis.detections, frame.um_per_pixel)
        self.state = self._monitor.state
        if happened:
            self._tell(happened, analysis)
        return analysis

    def _tell(self, happened: str, analysis: Analysis) -> None:
        label = analysis.card.label if analysis.card else ""
        tags = {"slot": analysis.pipeline}
        if happened == "raised":
            message = f"{analysis.pipeline} ({label}): {self.state.message}"
            log.warning("model drift: %s", message)
            self._events(RAISED, message, tags)
        elif happened == "cleared":
            self._events(CLEARED, f"{analysis.pipeline} ({label}): the live distributions are back within the baseline's", tags)
        elif happened == "learnt":
            self._events(LEARNT, f"{analysis.pipeline} ({label}): baseline {self.state.baseline}", tags)


def drift_state(stages: object) -> DriftState | None:
    """The drift state of a pipeline's stages, if one of them is the drift stage."""
    for stage in stages if isinstance(stages, (list, tuple)) else ():
        if isinstance(stage, DriftStage):
            return stage.state
    return None


def drift_message(pipelines: Sequence[Any]) -> str:
    """The raised drift alarm's message over the feed's pipelines ('' when none is): read every
    frame by the loop for the review inbox, so it builds nothing."""
    for pipeline in pipelines:
        state = drift_state(getattr(pipeline, "stages", ()))
        if state is not None and state.alarm:
            return state.message or "drift alarm"
    return ""
