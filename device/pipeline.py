"""One model's path through a frame: detector -> stages (tracker, ...) -> Analysis.

The device runs a list of these (device/feed.py holds them). What a frame's analysis *was*
travels with its boxes in `Analysis` (device/analysis.py): a frame the model did not look at
(skipped, gated, failed, no model) carries `detections=None` and the word that says why, so no
later stage can turn "not analysed" into "zero objects".

Extension point: `Pipeline.stages`, callables `(frame, analysis) -> analysis` run after detection,
in order (a tracker adds ids, a filter drops boxes); see device/analysis.Stage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from device import heap
from device.analysis import FAILED, NO_MODEL, SKIPPED, Analysis, ModelRun, Stage
from device.detections import Detections
from device.drift.baseline import card_baseline, sizes_px
from device.inference.autoscale import AutoScale
from device.inference.detector import Detector
from device.models.bundle import BundleError
from device.sources.capture import Frame

log = logging.getLogger(__name__)


class ModelSlot:
    """The hot-swappable model of one pipeline. The loop reads `detector` once per frame, and a
    switch replaces it whole only after the new one loaded and warmed up."""

    def __init__(self, loader: Callable[[Path], Detector], release: Callable[[Detector], None] | None = None) -> None:
        self._loader = loader
        self._release = release or close_detector  # a shared detector is only closed by its last user
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
        if previous is not None:
            self._release(previous)
            del previous  # this slot's last reference: a session no other slot shares is freed here
            heap.trim()  # and the heap it leaves goes back to the system (device/heap.py)
        return detector

    def clear(self) -> None:
        previous, self.detector, self.error = self.detector, None, ""
        if previous is not None:
            self._release(previous)
            del previous
            heap.trim()


def close_detector(detector: Detector) -> None:
    """Stop what a replaced backend runs in the background (a remote one probes its servers)."""
    close = getattr(detector.backend, "close", None)
    if callable(close):
        close()


@dataclass
class PipelineOptions:
    """Per-model choices that are not the bundle itself."""

    name: str = "main"
    every: int = 1  # analyse every k-th frame; the others record `skipped`
    overlay: bool = True  # draw this model's boxes on the live stream
    auto_scale: bool = True  # uncalibrated frames: the automatic per-frame scale (inference/autoscale.py)


def trained_object_px(detector: Detector) -> float | None:
    """Median object side the network saw in training (network pixels). A bundle trained at a
    µm per pixel: the baseline's median side in µm (each validation frame at its own µm/px, so a
    package of mixed objectives counts right) at the trained µm/px, times the card's scale;
    otherwise the median side in frame pixels times the scale. None: the card cannot say (not
    `resize: tile`, no baseline, or one the device learnt itself)."""
    policy = detector.tile_policy
    baseline, _ = card_baseline(detector.card.metrics)
    if policy is None or baseline is None or baseline.source == "learnt":
        return None
    trained_um = detector.card.input.um_per_pixel
    if trained_um and baseline.size_um is not None and baseline.size_um.median > 0:
        return baseline.size_um.median / trained_um * policy.scale
    if baseline.size_px is None or baseline.size_px.median <= 0:
        return None
    return baseline.size_px.median * policy.scale


def _sides(detector: Detector, detections: Detections) -> np.ndarray:
    """Sides of the boxes the bundle itself would keep (its per-class thresholds, whatever the
    operator's override): the objects' size, not that of faint candidates."""
    thresholds = np.asarray(detector.card.thresholds(), np.float32)
    ids = np.clip(detections.class_ids, 0, len(thresholds) - 1)
    sure = detections.scores >= thresholds[ids] if len(thresholds) else np.ones(len(detections), bool)
    return sizes_px(detections)[sure]


class Pipeline:
    """detector -> stages -> points for one model on the shared feed."""

    def __init__(self, options: PipelineOptions, slot: ModelSlot, stages: list[Stage] | None = None) -> None:
        self.options = options
        self.slot = slot
        self.stages: list[Stage] = list(stages or [])
        self.failures = 0
        self._auto: tuple[Detector, AutoScale | None] | None = None  # the running scale of the model it was made for

    @property
    def name(self) -> str:
        return self.options.name

    def analyse(self, frame: Frame, gate_reason: str = "", um_per_pixel: float | None = None) -> Analysis:
        """Run the model (unless gated, skipped or absent) and every stage on this frame.
        `um_per_pixel`: the device's calibration now (else the frame's own metadata is used)."""
        analysis = self._detect(frame, gate_reason, um_per_pixel)
        for stage in self.stages:
            analysis = stage(frame, analysis)
        return analysis

    def _detect(self, frame: Frame, gate_reason: str, um_per_pixel: float | None = None) -> Analysis:
        detector = self.slot.detector  # one read: a hot swap takes effect on the next frame
        card = detector.card if detector else None
        if detector is None:
            return Analysis(self.name, NO_MODEL, None, card, reason=self.slot.error)
        if gate_reason:
            return Analysis(self.name, gate_reason, None, card)
        if frame.index % max(1, self.options.every):
            return Analysis(self.name, SKIPPED, None, card)
        try:
            um = um_per_pixel or frame.um_per_pixel
            auto = self.auto_scale(detector) if not um else None
            run = detector.analyse(frame.image, um) if auto is None else self._run_auto(detector, auto, frame)
        except Exception as exc:  # one bad frame must never stop the instrument
            self.failures += 1
            return Analysis(self.name, FAILED, None, card, reason=f"{type(exc).__name__}: {exc}")
        return Analysis.ran(self.name, run, card)

    def auto_scale(self, detector: Detector) -> AutoScale | None:
        """The running automatic scale for `detector` (a new one after a hot swap); None when off
        or when the bundle cannot say what size it was trained at."""
        if not self.options.auto_scale:
            return None
        if self._auto is None or self._auto[0] is not detector:
            policy = getattr(detector, "tile_policy", None)  # a stand-in detector (tests, replay) may have none
            target = trained_object_px(detector) if policy is not None else None
            self._auto = (detector, AutoScale(policy.scale, target) if policy is not None and target else None)
        return self._auto[1]

    def _run_auto(self, detector: Detector, auto: AutoScale, frame: Frame) -> ModelRun:
        """One pass at the running scale; a second at once when the first frame of evidence asks
        for another scale, or when a probe is due after frames that found nothing."""
        run = detector.analyse(frame.image, scale=auto.scale)
        decision = auto.observe(_sides(detector, run.detections))
        if not (decision.rerun or decision.probe):
            return replace(run, fields={**run.fields, "auto_scale": round(auto.factor, 4), "scale_passes": 1})
        second = detector.analyse(frame.image, scale=decision.scale)
        if decision.rerun:
            auto.observe(_sides(detector, second.detections))
            run = replace(second, inference_ms=run.inference_ms + second.inference_ms)
        elif auto.probed(decision.scale, _sides(detector, second.detections)):
            run = replace(second, inference_ms=run.inference_ms + second.inference_ms)
        else:
            run = replace(run, inference_ms=run.inference_ms + second.inference_ms)
        return replace(run, fields={**run.fields, "auto_scale": round(auto.factor, 4), "scale_passes": 2})
