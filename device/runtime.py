"""The running device: capture -> per-model pipelines -> measure -> publish.

`Runtime` wires and owns the threads (capture, outbox sender) and runs the loop. The pieces it
wires stay small objects of their own: each model is a `Pipeline` with a hot-swappable
`ModelSlot` (device/pipeline.py), the heartbeat is a `Heartbeat` (device/status.py), the newest
frame for the web side is a `LiveBoard` (device/board.py), /healthz is device/health.py. The
loop owns nothing slow: points go to the durable outbox and a sender thread ships them, and
JPEGs are encoded only when a viewer asks for one.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from device.api import LatestFrame
from device.board import LiveBoard
from device.config import DeviceConfig
from device.detections import Detections
from device.experiments.annotate import mark_in_background
from device.experiments.quality import QualityFrameGate, analysed_status
from device.experiments.recorder import ExperimentRecorder, FrameContext
from device.experiments.store import ExperimentStore
from device.feed import FeedModels
from device.health import health_report
from device.hive.settings import ExtraModel
from device.hive.status import HiveHeartbeat
from device.metrics.outbox import Outbox
from device.metrics.points import FieldValue, Point
from device.metrics.sender import OutboxSender
from device.metrics.stats import FrameExtra, FrameMeasure, new_run_id
from device.models.bundle import ModelCard
from device.pipeline import FAILED, Analysis, FrameGate, Pipeline, Stage
from device.redact import redact
from device.sources.capture import Capture, Frame
from device.sources.registry import open_source
from device.status import Heartbeat
from device.tracking.experiment import TrackLog
from device.tracking.stage import TrackingStage

log = logging.getLogger(__name__)


class Runtime(FeedModels):
    """One device. Build it, call the init/start steps (see device/app.py), then `run()`."""

    def __init__(self, config: DeviceConfig) -> None:
        self.config = config
        self.started = time.time()
        self.run_id = new_run_id()  # frame_index restarts at 0 on every start: (run_id, frame_index) is unique
        self.capture: Capture | None = None
        self.outbox: Outbox | None = None
        self.sender: OutboxSender | None = None
        self.events: deque[dict[str, Any]] = deque(maxlen=50)
        self.pipelines: tuple[Pipeline, ...] = ()  # replaced whole on change: the loop reads it once a frame
        self._frame_pipelines: tuple[Pipeline, ...] = ()
        self.gates: list[FrameGate] = []  # frame-level "worth analysing?" checks, before any model
        self.quality = QualityFrameGate(config.quality)
        self.gates.append(self.quality)
        self.experiments: ExperimentRecorder | None = None
        self.track_log: TrackLog | None = None  # tracks and crossings of experiments, for their summary
        self.board = LiveBoard()
        self._hive_beat = HiveHeartbeat()
        self.heartbeat = Heartbeat(config.status_interval_s, self._status_fields, self._store, self._base_tags)
        self._pipelines_lock = threading.Lock()
        self._dropped_reported = 0
        self._stop = threading.Event()
        self.processed = 0
        self.bad_frames = 0
        self.store_errors = 0

    # ---- wiring steps ------------------------------------------------------------------------
    def init_outbox(self) -> None:
        cfg = self.config
        self.outbox = Outbox(cfg.data_dir / "outbox.sqlite", int(cfg.outbox.max_mb * 1e6), cfg.outbox.history_s,
                             sending=bool(cfg.influx.url))
        self.sender = OutboxSender(self.outbox, cfg.influx)

    def init_experiments(self) -> None:
        """The experiment store and recorder; an experiment running before a restart continues."""
        cfg = self.config
        self.experiments = ExperimentRecorder(
            ExperimentStore(cfg.data_dir / "experiments.sqlite"), cfg.device_name, cfg.project, self.event,
            lambda experiment, which: mark_in_background(cfg.grafana, experiment, which)).start_thread()
        if cfg.tracking.enabled:
            self.track_log = TrackLog(cfg.data_dir / "experiments.sqlite")

    def init_source(self) -> None:
        """Builds the capture for `config.source`; a malformed URI fails here, a missing camera does not."""
        source = open_source(self.config.source)
        backoff = (self.config.capture.reconnect_min_s, self.config.capture.reconnect_max_s)
        self.capture = Capture(source, backoff, events=self.event)

    def init_model(self) -> None:
        """The main pipeline with the configured bundle, and one pipeline per entry of `models`.
        A bad bundle does not stop the device: the stream and panel still come up (so a good
        model can be uploaded), /healthz says 503 with the reason."""
        main = ExtraModel(name="main", bundle=self.config.model or "-", backend=self.config.backend,
                          score_threshold=self.config.score_threshold)
        self._start_model(main, self.config.model)
        for extra in self.config.models:
            self._start_model(extra, extra.bundle)

    def model_stages(self) -> list[Stage]:
        """What runs after a model's detector: the tracker (unique counts, motility, crossings)."""
        cfg = self.config
        return [TrackingStage(cfg.tracking, self.um_per_pixel, self._base_tags)] if cfg.tracking.enabled else []

    @property
    def tracking(self) -> TrackingStage | None:
        """The main model's tracking stage (the panel's counting line and flow settings act on it)."""
        stages = self.pipelines[0].stages if self.pipelines else []
        return next((s for s in stages if isinstance(s, TrackingStage)), None)

    def start_sender(self) -> None:
        assert self.sender is not None
        self.sender.start()

    def start_capture(self) -> None:
        assert self.capture is not None
        self.capture.start()

    def stop(self) -> None:
        self._stop.set()

    def end_tracks(self) -> None:
        """End every model's open tracks now (shutdown): their `track` points are written."""
        for pipeline in self.pipelines:
            for stage in pipeline.stages:
                if isinstance(stage, TrackingStage) and self.outbox is not None:
                    points = stage.close(time.time())
                    self._store(points)
                    if self.track_log is not None:
                        self.track_log.add(points)
        if self.track_log is not None:
            self.track_log.flush()

    def shutdown(self, flush_timeout: float = 30.0) -> None:
        """Stop capture, push what is queued (bounded wait), stop the sender."""
        if self.capture is not None:
            self.capture.stop()
        self.end_tracks()
        if self.experiments is not None:
            self.experiments.close()
        if self.sender is not None:
            if not self.sender.flush(flush_timeout):
                log.warning("InfluxDB did not take every point before exit; %d stay in the outbox for next time",
                            self.outbox.depth() if self.outbox else 0)
            self.sender.stop()
        for pipeline in self.pipelines:
            pipeline.slot.clear()  # stops what backends run in the background (hive probes)

    # ---- the loop ----------------------------------------------------------------------------
    def run(self, max_frames: int | None = None) -> int:
        """capture -> analyse (every pipeline) -> measure -> publish until stopped, the source ends or max_frames."""
        assert self.capture is not None and self.outbox is not None
        self.event("started", f"run {self.run_id}, source {self.config.source}, model {self._model_label()}")
        self.heartbeat.start()
        while not self._stop.is_set() and (max_frames is None or self.processed < max_frames):
            self.heartbeat.beat_if_due()
            frame = self.capture.get(timeout=0.5)
            if frame is None:
                if self.capture.finished:
                    break
                continue
            analyses = self._analyse(frame)
            if analyses is None:
                continue
            self._publish(frame, analyses)
        self.heartbeat.beat_if_due(force=True)
        return self.processed

    def _analyse(self, frame: Frame) -> tuple[Analysis, ...] | None:
        """Every pipeline's analysis, or None for a frame no model could take (corrupt, empty, odd
        shape): it is skipped and counted, the loop goes on."""
        gate_reason = next((reason for gate in self.gates if (reason := gate(frame))), "")
        self._frame_pipelines = self.pipelines  # one read: a model added or removed mid-frame waits for the next
        analyses = tuple(p.analyse(frame, gate_reason) for p in self._frame_pipelines)
        failed = [a for a in analyses if a.inference == FAILED]
        if failed and len(failed) == len(analyses):
            self.bad_frames += 1
            if self.bad_frames in (1, 10, 100) or self.bad_frames % 1000 == 0:
                log.warning("skipped %d unusable frame(s); last: %s", self.bad_frames, failed[0].reason)
            return None
        return analyses

    def _measure(self, frame: Frame, analysis: Analysis, dropped: int) -> FrameMeasure:
        return FrameMeasure(
            index=frame.index, captured_at=frame.captured_at, fps=self.board.fps.fps, inference_ms=analysis.inference_ms,
            latency_ms=(time.perf_counter() - frame.captured_mono) * 1000.0, dropped_frames=dropped, run_id=self.run_id,
        )

    def _publish(self, frame: Frame, analyses: tuple[Analysis, ...]) -> None:
        self.board.fps.tick()
        assert self.capture is not None
        dropped = self.capture.dropped - self._dropped_reported
        self._dropped_reported += dropped
        points: list[Point] = []
        main_fields: dict[str, FieldValue] = {}
        um, quality = self.um_per_pixel(), self.quality.last
        fov = frame.image.shape[0] * frame.image.shape[1] * um**2 / 1e6 if um else None
        for pipeline, analysis in zip(self._frame_pipelines, analyses, strict=True):
            extra = FrameExtra(analysed_status(analysis.analysed, analysis.inference), quality.focus,
                               quality.saturated, quality.dark, fov)
            own = pipeline.points(analysis, self._measure(frame, analysis, dropped), self._base_tags(), um, extra)
            main_fields = main_fields or {**own[0].fields, "analysed": extra.analysed}
            points.extend(own)
        if analyses and self.experiments is not None:
            points.extend(self._record(frame, analyses[0], points[0].ts_us, um))
        self._store(points)
        if self.track_log is not None:
            self.track_log.add(points)
        main = analyses[0] if analyses else None
        detections = main.detections if main is not None and main.detections is not None else Detections.empty()
        classes = tuple(main.card.classes) if main is not None and main.card is not None else ()
        self.board.overlays = {p.name for p in self._frame_pipelines if p.options.overlay}
        self.board.post(LatestFrame(frame.image, detections, frame.captured_at, frame.index, classes, main_fields, analyses))
        self.processed += 1

    def _record(self, frame: Frame, main: Analysis, ts_us: int, um: float | None) -> list[Point]:
        """The main model's frame in the running experiment's record; its `object` points."""
        assert self.experiments is not None
        card = main.card
        context = FrameContext(card.classes if card else (), card.name if card else "", card.version if card else "",
                               um, frame.image.shape)
        analysed = analysed_status(main.analysed, main.inference)
        return self.experiments.record(ts_us, frame.index, self.quality.last, analysed, main.detections, context)

    def um_per_pixel(self) -> float | None:
        """The running experiment's calibration, else the configured default."""
        default = self.config.um_per_pixel
        return self.experiments.um_per_pixel(default) if self.experiments is not None else default

    def _store(self, points: list[Point]) -> None:
        """Commit to the outbox; a failing disk is reported and counted, the stream goes on."""
        assert self.outbox is not None
        try:
            self.outbox.add(points)
        except sqlite3.Error as exc:
            self.store_errors += 1
            if self.store_errors in (1, 10, 100) or self.store_errors % 1000 == 0:
                log.error("cannot write the outbox (%d failures; disk full or read-only?): %s", self.store_errors, exc)

    # ---- status and events -------------------------------------------------------------------
    def _base_tags(self) -> dict[str, str]:
        """device, project and, while one runs, experiment."""
        tags = {"device": self.config.device_name, "project": self.config.project}
        return {**tags, **self.experiments.tags()} if self.experiments is not None else tags

    def event(self, kind: str, message: str, tags: dict[str, str] | None = None, when: float | None = None) -> None:
        """A device_event point (and a line in /healthz); safe from any thread. Redacted: an event
        may quote a camera URI."""
        message = redact(message)
        when = time.time() if when is None else when
        self.events.append({"time": when, "kind": kind, "message": message})
        if self.outbox is not None:
            all_tags = {**self._base_tags(), **(tags or {}), "kind": kind}
            self._store([Point("device_event", all_tags, {"message": message}, int(when * 1e6))])

    def _status_fields(self) -> dict[str, FieldValue]:
        assert self.outbox is not None
        detector = self.detector
        return {
            "model": detector.card.name if detector else "",
            "model_version": detector.card.version if detector else "",
            "backend": detector.backend_name if detector else "",
            "models": len([p for p in self.pipelines if p.slot.detector is not None]),
            "source_state": self.source_state(),
            "fps": round(self.board.fps.fps, 3),
            "outbox_depth": self.outbox.depth(),
            "outbox_dropped": self.outbox.dropped(),
            "uptime_s": round(time.time() - self.started, 3),
            "run_id": self.run_id,
            **(self.tracking.heartbeat_fields() if self.tracking is not None else {}),
            **self._hive_beat.fields(self.pipelines),
        }

    def source_state(self) -> str:
        state = self.capture.state if self.capture else "failed"
        return {"starting": "reconnecting", "ended": "ok"}.get(state, state)

    def _model_label(self) -> str:
        return ", ".join(p.slot.label for p in self.pipelines) or "none"

    # ---- DeviceRuntime protocol (the web side) -------------------------------------------------
    def latest(self) -> LatestFrame | None:
        return self.board.latest()

    def annotated_jpeg(self, quality: int = 80) -> bytes | None:
        return self.board.annotated_jpeg(quality)

    def set_class_colours(self, colours: dict[str, str]) -> None:
        """The panel's project colours by class name: the stream draws classes as the panel does."""
        self.board.set_class_colours(colours)

    def live_stats(self) -> dict[str, Any]:
        """The board's counts (None when not analysed), quality, calibration, the experiment, health."""
        latest = self.board.latest()
        stats = latest.stats if latest else {}
        active = self.experiments.active if self.experiments is not None else None
        science = {"analysed": stats.get("analysed"), "focus": stats.get("focus"), "saturated_frac": stats.get("saturated_frac"),
                   "focus_reference": round(self.quality.gate.reference.value, 3), "focus_gate": self.config.quality.focus_relative_min,
                   "fov_mm2": stats.get("fov_mm2"), "um_per_pixel": self.um_per_pixel(),
                   "experiment": active.public() if active else None}
        tracking = {"tracking": self.tracking.live()} if self.tracking is not None else {}
        return {**self.board.live_stats(), **science, **{k: v for k, v in self.health().items() if k != "ok"}, **tracking}

    def history(self, seconds: float) -> list[dict[str, Any]]:
        return self.outbox.history(seconds) if self.outbox else []

    def health(self) -> dict[str, Any]:
        return health_report(self)

    def model_card(self) -> ModelCard | None:
        detector = self.detector
        return detector.card if detector else None

    def detect(self, image: np.ndarray) -> Detections:
        detector = self.detector
        return detector.detect(image) if detector else Detections.empty()
