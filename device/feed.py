"""The models on one feed: the main one and those beside it, each a Pipeline with a hot-swappable
slot. Added, switched and removed while the loop runs: the loop reads `pipelines` (a tuple,
replaced whole) once per frame, so a change takes effect on the next frame and stops nothing."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from device.config import DeviceConfig
from device.hive.settings import ExtraModel
from device.inference.backend import BackendContext
from device.inference.detector import Detector, load_detector
from device.models.bundle import BundleError, ModelCard
from device.pipeline import ModelSlot, Pipeline, PipelineOptions, Stage
from device.sources.capture import Capture

log = logging.getLogger(__name__)


class FeedModels:
    """The model half of the Runtime (a mixin: the runtime owns the loop that reads `pipelines`)."""

    config: DeviceConfig
    capture: Capture | None
    pipelines: tuple[Pipeline, ...]
    _pipelines_lock: threading.Lock

    def event(self, kind: str, message: str, tags: dict[str, str] | None = None, when: float | None = None) -> None:
        raise NotImplementedError

    def model_stages(self) -> list[Stage]:
        raise NotImplementedError

    def _start_model(self, settings: ExtraModel, bundle: str | None) -> Pipeline:
        slot = ModelSlot(lambda path: self._load(path, settings))
        pipeline = Pipeline(PipelineOptions(name=settings.name, every=settings.every, overlay=settings.overlay), slot, self.model_stages())
        self.add_pipeline(pipeline)
        if bundle:
            try:
                slot.load(Path(bundle))
            except BundleError as exc:
                log.error("model %s runs WITHOUT a bundle: %s", settings.name, exc)
                self.event("model_rejected", f"{settings.name}: {str(exc)[:500]}")
        return pipeline

    def add_pipeline(self, pipeline: Pipeline) -> None:
        """Append a model to the feed; it takes effect on the next frame, the others run on."""
        with self._pipelines_lock:
            if any(p.name == pipeline.name for p in self.pipelines):
                raise ValueError(f"a model named '{pipeline.name}' already runs on this device")
            self.pipelines = (*self.pipelines, pipeline)

    def remove_pipeline(self, name: str) -> Pipeline:
        with self._pipelines_lock:
            found = [p for p in self.pipelines if p.name == name]
            if not found:
                raise KeyError(f"no model named '{name}' runs on this device")
            self.pipelines = tuple(p for p in self.pipelines if p.name != name)
        return found[0]

    @property
    def main_slot(self) -> ModelSlot:
        return self.pipelines[0].slot if self.pipelines else ModelSlot(self._load)

    @property
    def detector(self) -> Detector | None:
        """The main pipeline's model (the one the panel pre-annotates with)."""
        return self.main_slot.detector

    @property
    def model_error(self) -> str:
        return self.main_slot.error

    def _load(self, path: Path, settings: ExtraModel | None = None) -> Detector:
        backend = settings.backend if settings else self.config.backend
        threshold = settings.score_threshold if settings else self.config.score_threshold
        context = BackendContext(self.config.hive, self._source_period)
        return load_detector(path, backend, self.config.data_dir, threshold, context)

    def _source_period(self) -> float | None:
        return self.capture.period_s if self.capture is not None else None

    def pipeline(self, name: str) -> Pipeline:
        found = [p for p in self.pipelines if p.name == name]
        if not found:
            raise KeyError(f"no model named '{name}' runs on this device (running: {', '.join(p.name for p in self.pipelines)})")
        return found[0]

    def switch_model(self, bundle_path: Path, name: str = "main") -> ModelCard:
        """Load, check and warm the new bundle beside the running one, then swap that pipeline's
        reference: the loop, the stream and the other models never stop. A bad bundle raises
        BundleError; the old model stays."""
        slot = self.pipeline(name).slot
        previous = slot.label
        try:
            detector = slot.load(Path(bundle_path))
        except BundleError as exc:
            self.event("model_rejected", str(exc)[:500])
            raise
        where = "" if name == "main" else f" ({name})"
        self.event("model_switched", f"{previous} -> {detector.card.label} on {detector.backend_name}{where}")
        return detector.card

    def add_model(self, name: str, bundle_path: Path, every: int = 1, overlay: bool = True) -> ModelCard:
        """Run one more model beside the others (the panel's "run beside"); loaded and warmed
        before it joins, so a bad bundle raises BundleError and changes nothing."""
        settings = ExtraModel(name=name, bundle=str(bundle_path), every=every, overlay=overlay,
                              backend=self.config.backend, score_threshold=self.config.score_threshold)
        if any(p.name == name for p in self.pipelines):
            raise ValueError(f"a model named '{name}' already runs on this device")
        slot = ModelSlot(lambda path: self._load(path, settings))
        try:
            detector = slot.load(Path(bundle_path))
        except BundleError as exc:
            self.event("model_rejected", f"{name}: {str(exc)[:500]}")
            raise
        self.add_pipeline(Pipeline(PipelineOptions(name=name, every=every, overlay=overlay), slot, self.model_stages()))
        self.event("model_added", f"{detector.card.label} runs beside as {name}, every {every} frame(s)")
        return detector.card

    def remove_model(self, name: str) -> None:
        """Stop one model; the others run on. The main model is switched, not removed."""
        if name == "main":
            raise ValueError("the main model cannot be removed: switch it to another bundle instead")
        pipeline = self.remove_pipeline(name)
        label = pipeline.slot.label
        pipeline.slot.clear()
        self.event("model_removed", f"{name} ({label}) stopped")

    def set_overlay(self, name: str, shown: bool) -> None:
        self.pipeline(name).options.overlay = shown

    def feed_models(self) -> list[dict[str, Any]]:
        """Every model on the feed, for the panel (name, label, every, overlay, backend, error)."""
        return [{"name": p.name, "label": p.slot.label if p.slot.detector else None, "every": p.options.every,
                 "overlay": p.options.overlay, "backend": p.slot.detector.backend_name if p.slot.detector else None,
                 "error": p.slot.error} for p in self.pipelines]



def sync_models(runtime: FeedModels, wanted: list[ExtraModel]) -> list[str]:
    """Make the models beside the main one what the configuration lists (config reload): stop the
    ones it no longer names, start new ones, switch changed bundles, apply every/overlay. A bad
    bundle is logged and skipped; the others apply. Returns what changed, for the log."""
    changes: list[str] = []
    running = {p.name: p for p in runtime.pipelines if p.name != "main"}
    for name in set(running) - {m.name for m in wanted}:
        runtime.remove_model(name)
        changes.append(f"stopped {name}")
    for model in wanted:
        pipeline = running.get(model.name)
        try:
            if pipeline is None:
                runtime.add_model(model.name, Path(model.bundle), model.every, model.overlay)
                changes.append(f"started {model.name}")
                continue
            if pipeline.slot.path != Path(model.bundle):
                runtime.switch_model(Path(model.bundle), model.name)
                changes.append(f"switched {model.name}")
        except (BundleError, ValueError) as exc:
            log.error("model %s from the configuration not applied: %s", model.name, exc)
            continue
        pipeline.options.every, pipeline.options.overlay = model.every, model.overlay
    return changes
