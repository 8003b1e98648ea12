"""The models on one feed and the gates before them: a frame in, every model's Analysis out.

The main model and those beside it are each a Pipeline with a hot-swappable slot. They are
added, switched and removed while the loop runs: `analyse` reads `pipelines` (a tuple, replaced
whole under a lock) once per frame, so a change takes effect on the next frame and stops nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.analysis import FAILED, Analysis, FrameGate, Stage
from device.experiments.quality import FrameQuality, QualityFrameGate
from device.hive.standby import ModelStandby, waits_for_hive
from device.inference.detector import Detector
from device.models.bundle import BundleError, ModelCard
from device.models.settings import ModelSettings
from device.pipeline import ModelSlot, Pipeline, PipelineOptions, close_detector
from device.sources.capture import Frame

log = logging.getLogger(__name__)

Loader = Callable[[Path, ModelSettings], Detector]  # bundle, the model's settings -> a warmed detector
EventSink = Callable[[str, str], None]  # kind, message -> a device_event


@dataclass(frozen=True)
class FrameResult:
    """One frame as the feed saw it: its quality verdict and every model's analysis, with the
    pipelines that made them (the tuple read for this frame)."""

    frame: Frame
    quality: FrameQuality
    analyses: tuple[Analysis, ...]
    pipelines: tuple[Pipeline, ...]

    @property
    def main(self) -> Analysis | None:
        return self.analyses[0] if self.analyses else None

    @property
    def unusable(self) -> bool:
        """No model could take the frame (corrupt, empty, odd shape)."""
        return bool(self.analyses) and all(a.inference == FAILED for a in self.analyses)


def _bundle_key(path: Path, settings: ModelSettings) -> tuple[object, ...]:
    """Same file(s), same backend, same threshold -> the same detector. The files' mtimes are part
    of it, so a bundle replaced in place loads anew."""
    path = Path(path).resolve()
    stamps = tuple(p.stat().st_mtime_ns for p in (path, path / "model.json", path / "model.onnx") if p.exists())
    return (str(path), stamps, settings.backend, settings.score_threshold)


class DetectorPool:
    """Loaded detectors by bundle: two slots running one bundle share one inference session (and
    its memory); a detector is closed when its last slot lets it go."""

    def __init__(self, loader: Loader) -> None:
        self._loader = loader
        self._held: dict[tuple[object, ...], tuple[Detector, int]] = {}
        self._lock = threading.Lock()

    def acquire(self, path: Path, settings: ModelSettings) -> Detector:
        key = _bundle_key(path, settings)
        with self._lock:
            held = self._held.get(key)
            if held is not None:
                self._held[key] = (held[0], held[1] + 1)
                return held[0]
        detector = self._loader(path, settings)  # outside the lock: loading takes seconds
        with self._lock:
            held = self._held.get(key)
            self._held[key] = (held[0], held[1] + 1) if held is not None else (detector, 1)
        if held is not None:
            close_detector(detector)  # another slot loaded the same bundle meanwhile: use that one
            return held[0]
        return detector

    def release(self, detector: Detector) -> None:
        with self._lock:
            key = next((k for k, (d, _) in self._held.items() if d is detector), None)
            if key is None:
                last = True
            else:
                refs = self._held[key][1] - 1
                last = refs == 0
                if last:
                    del self._held[key]
                else:
                    self._held[key] = (detector, refs)
        if last:
            close_detector(detector)

    def __len__(self) -> int:
        return len(self._held)


class Feed:
    """The pipelines, their lock, the frame gates, and add/switch/remove of models."""

    def __init__(self, main: ModelSettings, loader: Loader, quality: QualityFrameGate,
                 stages: Callable[[], list[Stage]] = list, events: EventSink | None = None, max_beside: int = 4,
                 hive_probe_s: float = 2.0) -> None:
        self.main_settings = main
        self.detectors = DetectorPool(loader)
        self.max_beside = max_beside
        self.hive_probe_s = hive_probe_s
        self._standby: dict[str, ModelStandby[Detector]] = {}  # slots waiting for the hive to load their model
        self.quality = quality
        self.gates: list[FrameGate] = [quality]  # frame-level "worth analysing?" checks, before any model
        self._stages = stages
        self._event = events or (lambda kind, message: None)
        self.pipelines: tuple[Pipeline, ...] = ()  # replaced whole on change: read once a frame
        self._lock = threading.Lock()
        self.bad_frames = 0

    # ---- the frame --------------------------------------------------------------------------
    def analyse(self, frame: Frame, um_per_pixel: float | None = None) -> FrameResult:
        """Gate the frame, then run every pipeline on it; a frame no model could take is counted.
        `um_per_pixel`: the calibration now, so a model trained at another magnification rescales."""
        quality = self.quality(frame)
        verdicts = [quality, *(gate(frame) for gate in self.gates if gate is not self.quality)]
        reason = next((v.reason for v in verdicts if v.reason), "")
        pipelines = self.pipelines  # one read: a model added or removed mid-frame waits for the next
        result = FrameResult(frame, quality, tuple(p.analyse(frame, reason, um_per_pixel) for p in pipelines), pipelines)
        if result.unusable:
            self.bad_frames += 1
            if self.bad_frames in (1, 10, 100) or self.bad_frames % 1000 == 0:
                log.warning("%d unusable frame(s) recorded as failed; last: %s", self.bad_frames, result.analyses[0].reason)
        return result

    # ---- the models -------------------------------------------------------------------------
    def start_model(self, settings: ModelSettings, bundle: str | None) -> Pipeline:
        """A pipeline for `settings`, loaded from `bundle` when given. A bad bundle does not stop
        the device: the pipeline runs without a model and says why."""
        slot = self._slot(settings)
        pipeline = Pipeline(PipelineOptions(name=settings.name, every=settings.every, overlay=settings.overlay,
                                            auto_scale=settings.scale == "auto"), slot, self._stages())
        self.add_pipeline(pipeline)
        if bundle:
            try:
                slot.load(Path(bundle))
            except BundleError as exc:
                log.error("model %s runs WITHOUT a bundle: %s", settings.name, exc)
                self._event("model_rejected", f"{settings.name}: {str(exc)[:500]}")
                if waits_for_hive(exc):  # a model on the hive alone: load it once a server answers
                    self._wait_for_hive(pipeline, Path(bundle))
        return pipeline

    def _wait_for_hive(self, pipeline: Pipeline, bundle: Path) -> None:
        def loaded(detector: Detector) -> None:
            self._event("model_loaded", f"{pipeline.name}: {detector.card.label} on {detector.backend_name}, the hive answered")

        standby = ModelStandby(lambda: pipeline.slot.load(bundle), loaded, self.hive_probe_s, pipeline.name)
        self._standby[pipeline.name] = standby.start()

    def _stop_standby(self, name: str) -> None:
        standby = self._standby.pop(name, None)
        if standby is not None:
            standby.stop()

    def add_pipeline(self, pipeline: Pipeline) -> None:
        """Append a model to the feed; it takes effect on the next frame, the others run on."""
        with self._lock:
            if any(p.name == pipeline.name for p in self.pipelines):
                raise ValueError(f"a model named '{pipeline.name}' already runs on this device")
            self.pipelines = (*self.pipelines, pipeline)

    def _slot(self, settings: ModelSettings) -> ModelSlot:
        return ModelSlot(lambda path: self.detectors.acquire(path, settings), self.detectors.release)

    def pipeline(self, name: str) -> Pipeline:
        found = [p for p in self.pipelines if p.name == name]
        if not found:
            raise KeyError(f"no model named '{name}' runs on this device (running: {', '.join(p.name for p in self.pipelines)})")
        return found[0]

    @property
    def detector(self) -> Detector | None:
        """The main pipeline's model (the one the panel pre-annotates with)."""
        return self.pipelines[0].slot.detector if self.pipelines else None

    @property
    def label(self) -> str:
        return ", ".join(p.slot.label for p in self.pipelines) or "none"

    def switch_model(self, bundle_path: Path, name: str = "main") -> ModelCard:
        """Load, check and warm the new bundle beside the running one, then swap that pipeline's
        reference: the loop, the stream and the other models never stop. A bad bundle raises
        BundleError; the old model stays."""
        slot = self.pipeline(name).slot
        self._stop_standby(name)
        previous = slot.label
        try:
            detector = slot.load(Path(bundle_path))
        except BundleError as exc:
            self._event("model_rejected", str(exc)[:500])
            raise
        where = "" if name == "main" else f" ({name})"
        self._event("model_switched", f"{previous} -> {detector.card.label} on {detector.backend_name}{where}")
        return detector.card

    def add_model(self, name: str, bundle_path: Path, every: int = 1, overlay: bool = True) -> ModelCard:
        """Run one more model beside the others (the panel's "run beside"); loaded and warmed
        before it joins, so a bad bundle raises BundleError and changes nothing."""
        settings = self.main_settings.model_copy(update={"name": name, "bundle": str(bundle_path), "every": every, "overlay": overlay})
        if any(p.name == name for p in self.pipelines):
            raise ValueError(f"a model named '{name}' already runs on this device")
        if len(self.pipelines) - 1 >= self.max_beside:
            raise ValueError(f"this device runs at most {self.max_beside} model(s) beside the main one "
                             f"(max_models_beside in the config): stop one first")
        slot = self._slot(settings)
        try:
            detector = slot.load(Path(bundle_path))
        except BundleError as exc:
            self._event("model_rejected", f"{name}: {str(exc)[:500]}")
            raise
        self.add_pipeline(Pipeline(PipelineOptions(name=name, every=every, overlay=overlay, auto_scale=settings.scale == "auto"),
                                   slot, self._stages()))
        self._event("model_added", f"{detector.card.label} runs beside as {name}, every {every} frame(s)")
        return detector.card

    def remove_model(self, name: str) -> None:
        """Stop one model; the others run on. The main model is switched, not removed."""
        if name == "main":
            raise ValueError("the main model cannot be removed: switch it to another bundle instead")
        with self._lock:
            pipeline = self.pipeline(name)
            self.pipelines = tuple(p for p in self.pipelines if p.name != name)
        self._stop_standby(name)
        label = pipeline.slot.label
        pipeline.slot.clear()
        self._event("model_removed", f"{name} ({label}) stopped")

    def set_overlay(self, name: str, shown: bool) -> None:
        self.pipeline(name).options.overlay = shown

    def models(self) -> list[dict[str, Any]]:
        """Every model on the feed, for the panel (name, label, every, overlay, backend, error)."""
        return [{"name": p.name, "label": p.slot.label if p.slot.detector else None, "every": p.options.every,
                 "overlay": p.options.overlay, "backend": p.slot.detector.backend_name if p.slot.detector else None,
                 "error": p.slot.error} for p in self.pipelines]

    def close(self) -> None:
        """Stop what backends run in the background (hive probes, slots waiting for the hive)."""
        for name in list(self._standby):
            self._stop_standby(name)
        for pipeline in self.pipelines:
            pipeline.slot.clear()


def sync_models(feed: Feed, wanted: list[ModelSettings]) -> list[str]:
    """Make the models beside the main one what the configuration lists (config reload): stop the
    ones it no longer names, start new ones, switch changed bundles, apply every/overlay. A bad
    bundle is logged and skipped; the others apply. Returns what changed, for the log."""
    changes: list[str] = []
    running = {p.name: p for p in feed.pipelines if p.name != "main"}
    for name in set(running) - {m.name for m in wanted}:
        feed.remove_model(name)
        changes.append(f"stopped {name}")
    for model in wanted:
        pipeline = running.get(model.name)
        try:
            if pipeline is None:
                feed.add_model(model.name, Path(model.bundle), model.every, model.overlay)
                changes.append(f"started {model.name}")
                continue
            if pipeline.slot.path != Path(model.bundle):
                feed.switch_model(Path(model.bundle), model.name)
                changes.append(f"switched {model.name}")
        except (BundleError, ValueError) as exc:
            log.error("model %s from the configuration not applied: %s", model.name, exc)
            continue
        pipeline.options.every, pipeline.options.overlay = model.every, model.overlay
    return changes
