"""One model's path through a frame: detector -> stages (tracker, ...) -> measures.

The device runs a list of these (device/app.py builds them). What a frame's analysis *was*
travels with its boxes in `Analysis`: a frame the model did not look at (skipped, out of
focus, failed, no model) carries `detections=None`, never an empty `Detections`, so no later
stage can turn "not analysed" into "zero objects".

Extension points (issues 12 and 14 hook in here, not into the loop):
- `Pipeline.stages`: callables `(frame, analysis) -> analysis` run after detection, in order
  (a tracker adds ids, a filter drops boxes). A stage gets every frame, analysed or not, and
  must keep `detections is None` for a frame that was not analysed.
- `FrameGate` (see device/runtime.py `Runtime.gates`): decides for the whole frame, before any
  model runs, that it is not worth analysing (e.g. `out_of_focus`); every pipeline then
  records that reason as its `inference`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from device.detections import Detections
from device.inference.detector import Detector
from device.metrics.points import FieldValue, Point
from device.metrics.stats import FrameExtra, FrameMeasure, frame_points
from device.models.bundle import BundleError, ModelCard
from device.sources.capture import Frame

log = logging.getLogger(__name__)

# `inference` values that mean "the model looked at this frame" (remote ones are `remote:<endpoint>`).
LOCAL, FALLBACK = "local", "fallback"
# ...and ones that mean it did not: the frame writes no count at all for this model.
SKIPPED, FAILED, NO_MODEL = "skipped", "failed", "none"


@dataclass(frozen=True)
class Analysis:
    """What one model made of one frame, and how. `detections is None` = not analysed."""

    pipeline: str
    inference: str
    detections: Detections | None
    card: ModelCard | None = None
    inference_ms: float = 0.0
    reason: str = ""
    fields: dict[str, FieldValue] = field(default_factory=dict)  # extra fields of this frame's point (bytes_sent, remote_ms, ...)
    extra: dict[str, object] = field(default_factory=dict)  # stage outputs (e.g. track ids), by stage name

    @property
    def analysed(self) -> bool:
        return self.detections is not None

    def with_detections(self, detections: Detections) -> Analysis:
        """The same analysis with changed boxes (for stages); refuses to invent boxes for a frame
        that was never analysed."""
        if self.detections is None:
            raise ValueError(f"pipeline {self.pipeline}: frame was not analysed ({self.inference}); a stage cannot give it boxes")
        return replace(self, detections=detections)


class Stage(Protocol):
    """A step after detection: tracker, filter, measure helper. Runs on every frame in order."""

    def __call__(self, frame: Frame, analysis: Analysis) -> Analysis: ...


class FrameGate(Protocol):
    """Decides before any model runs whether a frame is worth analysing: '' = yes, else the reason
    (it becomes every pipeline's `inference`, e.g. 'out_of_focus')."""

    def __call__(self, frame: Frame) -> str: ...


class ModelSlot:
    """The hot-swappable model of one pipeline. The loop reads `detector` once per frame, and a
    switch replaces it whole only after the new one loaded and warmed up."""

    def __init__(self, loader: Callable[[Path], Detector]) -> None:
        self._loader = loader
        self.detector: Detector | None = None
        self.path: Path | None = None  # the bundle the detector came from
        self.error = ""

    @property
    def label(self) -> str:
        return self.detector.card.label if self.detector else "none"

    def load(self, path: Path) -> Detector:
        """Load, check and warm `path`, then swap it in; BundleError keeps the old model running."""
        try:
            detector = self._loader(Path(path))
        except BundleError as exc:
            self.error = str(exc)
            raise
        previous, self.detector, self.error, self.path = self.detector, detector, "", Path(path)
        _close(previous)
        return detector

    def clear(self) -> None:
        previous, self.detector, self.error = self.detector, None, ""
        _close(previous)


def _close(detector: Detector | None) -> None:
    """Stop what a replaced backend runs in the background (a remote one probes its servers)."""
    close = getattr(detector.backend, "close", None) if detector is not None else None
    if callable(close):
        close()


@dataclass
class PipelineOptions:
    """Per-model choices that are not the bundle itself."""

    name: str = "main"
    every: int = 1  # analyse every k-th frame; the others record `skipped`
    overlay: bool = True  # draw this model's boxes on the live stream


class Pipeline:
    """detector -> stages -> points for one model on the shared feed."""

    def __init__(self, options: PipelineOptions, slot: ModelSlot, stages: list[Stage] | None = None) -> None:
        self.options = options
        self.slot = slot
        self.stages: list[Stage] = list(stages or [])
        self.failures = 0

    @property
    def name(self) -> str:
        return self.options.name

    def analyse(self, frame: Frame, gate_reason: str = "") -> Analysis:
        """Run the model (unless gated, skipped or absent) and every stage on this frame."""
        analysis = self._detect(frame, gate_reason)
        for stage in self.stages:
            analysis = stage(frame, analysis)
        return analysis

    def _detect(self, frame: Frame, gate_reason: str) -> Analysis:
        detector = self.slot.detector  # one read: a hot swap takes effect on the next frame
        card = detector.card if detector else None
        if detector is None:
            return Analysis(self.name, NO_MODEL, None, card)
        if gate_reason:
            return Analysis(self.name, gate_reason, None, card)
        if frame.index % max(1, self.options.every):
            return Analysis(self.name, SKIPPED, None, card)
        try:
            detections = detector.detect(frame.image)
        except Exception as exc:  # one bad frame must never stop the instrument
            self.failures += 1
            return Analysis(self.name, FAILED, None, card, reason=f"{type(exc).__name__}: {exc}")
        return Analysis(self.name, detector.last_route, detections, card, detector.last_inference_ms,
                        fields=dict(detector.last_fields))

    def points(self, analysis: Analysis, measure: FrameMeasure, base_tags: dict[str, str],
               um_per_pixel: float | None, extra: FrameExtra | None = None) -> list[Point]:
        """The frame's points for this model: counts only when it was analysed."""
        tags = dict(base_tags)
        if analysis.card is not None:
            tags.update(model=analysis.card.name, model_version=analysis.card.version)
        classes = analysis.card.classes if analysis.card else []
        points = frame_points(analysis.detections, measure, tags, classes, um_per_pixel, analysis.inference, extra)
        points[0].fields.update(analysis.fields)
        return points + list(analysis.extra.get("points", ()))  # type: ignore[call-overload]  # stages' own (e.g. `track`)
