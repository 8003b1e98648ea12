"""The running device: capture -> detect -> measure -> publish, and what the web side may ask of it.

`Runtime` implements device.api.DeviceRuntime. The loop owns nothing slow: capture happens on
its own thread, points go to the durable outbox (local disk) and a sender thread ships them, and
JPEGs are encoded only when a viewer asks for one.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from device.api import LatestFrame
from device.config import DeviceConfig
from device.detections import Detections
from device.inference.detector import Detector, load_detector
from device.metrics.outbox import Outbox
from device.metrics.points import FieldValue, Point
from device.metrics.sender import OutboxSender
from device.metrics.stats import FpsMonitor, FrameMeasure, frame_points
from device.models.bundle import BundleError, ModelCard
from device.render import annotate, encode_jpeg
from device.sources.capture import Capture, Frame
from device.sources.registry import open_source
from device.status import temperatures
from device.tracking.overlay import TrackOverlay
from device.tracking.stage import TrackingStage

log = logging.getLogger(__name__)


class Runtime:
    """One device. Build it, call the init/start steps (see device/app.py), then `run()`."""

    def __init__(self, config: DeviceConfig) -> None:
        self.config = config
        self.started = time.time()
        self.detector: Detector | None = None
        self.model_error = ""
        self.capture: Capture | None = None
        self.outbox: Outbox | None = None
        self.sender: OutboxSender | None = None
        self.events: deque[dict[str, Any]] = deque(maxlen=50)
        self._fps = FpsMonitor()
        self._latest: LatestFrame | None = None
        self._jpeg: tuple[int, bytes] | None = None
        self._jpeg_lock = threading.Lock()
        self._dropped_reported = 0
        self._next_status = 0.0
        self._stop = threading.Event()
        self.processed = 0
        self.bad_frames = 0
        self.store_errors = 0
        self.tracking = TrackingStage(config.tracking, config.um_per_pixel) if config.tracking.enabled else None

    # ---- wiring steps ------------------------------------------------------------------------
    def init_outbox(self) -> None:
        cfg = self.config
        self.outbox = Outbox(cfg.data_dir / "outbox.sqlite", int(cfg.outbox.max_mb * 1e6), cfg.outbox.history_s,
                             sending=bool(cfg.influx.url))
        self.sender = OutboxSender(self.outbox, cfg.influx)

    def init_source(self) -> None:
        """Builds the capture for `config.source`; a malformed URI fails here, a missing camera does not."""
        source = open_source(self.config.source)
        backoff = (self.config.capture.reconnect_min_s, self.config.capture.reconnect_max_s)
        self.capture = Capture(source, backoff, events=self.event)

    def init_model(self) -> None:
        """Loads the configured bundle, if any. A bad one does not stop the device: the stream and
        panel still come up (so a good model can be uploaded), /healthz says 503 with the reason."""
        if not self.config.model:
            return
        try:
            self.detector = self._load(Path(self.config.model))
        except BundleError as exc:
            self.model_error = str(exc)
            log.error("running WITHOUT a model: %s", exc)
            self.event("model_rejected", str(exc)[:500])

    def start_sender(self) -> None:
        assert self.sender is not None
        self.sender.start()

    def start_capture(self) -> None:
        assert self.capture is not None
        self.capture.start()

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self, flush_timeout: float = 30.0) -> None:
        """Stop capture, push what is queued (bounded wait), stop the sender."""
        if self.capture is not None:
            self.capture.stop()
        if self.tracking is not None:
            self._store(self.tracking.close(time.time()))  # open tracks end with the process
        if self.sender is not None:
            if not self.sender.flush(flush_timeout):
                log.warning("InfluxDB did not take every point before exit; %d stay in the outbox for next time",
                            self.outbox.depth() if self.outbox else 0)
            self.sender.stop()

    # ---- the loop ----------------------------------------------------------------------------
    def run(self, max_frames: int | None = None) -> int:
        """capture -> detect -> measure -> publish until stopped, the source ends or max_frames."""
        assert self.capture is not None and self.outbox is not None
        self.event("started", f"source {self.config.source}, model {self._model_label()}")
        self._next_status = time.monotonic() + min(2.0, self.config.status_interval_s)  # first beat after the camera opened
        while not self._stop.is_set() and (max_frames is None or self.processed < max_frames):
            self._heartbeat_if_due()
            frame = self.capture.get(timeout=0.5)
            if frame is None:
                if self.capture.finished:
                    break
                continue
            detector = self.detector  # one read: a hot swap takes effect on the next frame
            detections = self._detect(detector, frame)
            if detections is None:
                continue
            points = self._measure(frame, detections, detector)
            tracks = self._track(frame, detections, detector, points)
            self._publish(frame, detections, points, detector, tracks)
        self._heartbeat_if_due(force=True)
        return self.processed

    def _detect(self, detector: Detector | None, frame: Frame) -> Detections | None:
        """Detections, or None for a frame the model cannot take (corrupt, empty, odd shape): it is
        skipped and counted, the loop goes on."""
        if detector is None:
            return Detections.empty()
        try:
            return detector.detect(frame.image)
        except Exception as exc:  # one bad frame must never stop the instrument
            self.bad_frames += 1
            if self.bad_frames in (1, 10, 100) or self.bad_frames % 1000 == 0:
                log.warning("skipped %d unusable frame(s); last: %s: %s", self.bad_frames, type(exc).__name__, exc)
            return None

    def _tags(self, detector: Detector | None) -> dict[str, str]:
        tags = {"device": self.config.device_name, "project": self.config.project}
        if detector is not None:
            tags.update(model=detector.card.name, model_version=detector.card.version)
        return tags

    def _measure(self, frame: Frame, detections: Detections, detector: Detector | None) -> list[Point]:
        self._fps.tick()
        assert self.capture is not None
        dropped = self.capture.dropped - self._dropped_reported
        self._dropped_reported += dropped
        measure = FrameMeasure(
            index=frame.index, captured_at=frame.captured_at, fps=self._fps.fps,
            inference_ms=detector.last_inference_ms if detector else 0.0,
            latency_ms=(time.perf_counter() - frame.captured_mono) * 1000.0, dropped_frames=dropped,
        )
        classes = detector.card.classes if detector else []
        return frame_points(detections, measure, self._tags(detector), classes, self.config.um_per_pixel)

    def _track(self, frame: Frame, detections: Detections, detector: Detector | None, points: list[Point]) -> TrackOverlay | None:
        """Tracks, unique counts, motility and crossings of this model's objects; their points join
        the frame's. A new detector object (model switch) first ends the old model's tracks."""
        if self.tracking is None or detector is None:
            return None
        overlay, track_points = self.tracking.update(detections, frame.captured_at, frame.image.shape[:2], detector,
                                                     detector.card.classes, self._tags(detector))
        points.extend(track_points)
        return overlay

    def _publish(self, frame: Frame, detections: Detections, points: list[Point], detector: Detector | None,
                 tracks: TrackOverlay | None = None) -> None:
        self._store(points)
        classes = tuple(detector.card.classes) if detector else ()
        self._latest = LatestFrame(frame.image, detections, frame.captured_at, frame.index, classes, dict(points[0].fields), tracks)
        self.processed += 1

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
    def event(self, kind: str, message: str) -> None:
        """A device_event point (and a line in /healthz); safe from any thread."""
        self.events.append({"time": time.time(), "kind": kind, "message": message})
        if self.outbox is not None:
            tags = {"device": self.config.device_name, "project": self.config.project, "kind": kind}
            self._store([Point("device_event", tags, {"message": message}, int(time.time() * 1e6))])

    def _heartbeat_if_due(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_status:
            return
        self._next_status = now + self.config.status_interval_s
        assert self.outbox is not None
        detector = self.detector
        fields: dict[str, FieldValue] = {
            "model": detector.card.name if detector else "",
            "model_version": detector.card.version if detector else "",
            "backend": detector.backend_name if detector else "",
            "source_state": self._source_state(),
            "fps": round(self._fps.fps, 3),
            "outbox_depth": self.outbox.depth(),
            "outbox_dropped": self.outbox.dropped(),
            "uptime_s": round(time.time() - self.started, 3),
        }
        fields.update(temperatures())
        if self.tracking is not None:
            fields.update(self.tracking.heartbeat_fields())
        tags = {"device": self.config.device_name, "project": self.config.project}
        self._store([Point("device_status", tags, fields, int(time.time() * 1e6))])

    def _source_state(self) -> str:
        state = self.capture.state if self.capture else "failed"
        return {"starting": "reconnecting", "ended": "ok"}.get(state, state)

    def _model_label(self) -> str:
        return self.detector.card.label if self.detector else "none"

    # ---- models --------------------------------------------------------------------------------
    def _load(self, path: Path) -> Detector:
        return load_detector(path, self.config.backend, self.config.data_dir, self.config.score_threshold)

    def switch_model(self, bundle_path: Path) -> ModelCard:
        """Load, check and warm the new bundle beside the running one, then swap the reference:
        the loop and the stream never stop. A bad bundle raises BundleError; the old model stays."""
        try:
            detector = self._load(Path(bundle_path))
        except BundleError as exc:
            self.model_error = str(exc)
            self.event("model_rejected", str(exc)[:500])
            raise
        previous = self._model_label()
        self.detector, self.model_error = detector, ""
        self.event("model_switched", f"{previous} -> {detector.card.label} on {detector.backend_name}")
        return detector.card

    # ---- DeviceRuntime protocol ---------------------------------------------------------------
    def latest(self) -> LatestFrame | None:
        return self._latest

    def annotated_jpeg(self, quality: int = 80) -> bytes | None:
        latest = self._latest
        if latest is None:
            return None
        with self._jpeg_lock:
            if self._jpeg is not None and self._jpeg[0] == latest.index:
                return self._jpeg[1]
            image = annotate(latest.image, latest.detections, latest.classes, self._fps.fps, latest.tracks)
            self._jpeg = (latest.index, encode_jpeg(image, quality))
            return self._jpeg[1]

    def live_stats(self) -> dict[str, Any]:
        latest = self._latest
        counts: dict[str, int] = {}
        if latest is not None:
            per_class = np.bincount(latest.detections.class_ids, minlength=len(latest.classes))
            counts = {name: int(per_class[i]) for i, name in enumerate(latest.classes)}
        stats = dict(latest.stats) if latest else {}
        return {"time": time.time(), "frame_index": latest.index if latest else None, "counts": counts,
                "fps": round(self._fps.fps, 2), "count": stats.get("count", 0),
                "inference_ms": stats.get("inference_ms"), "latency_ms": stats.get("latency_ms"),
                **{k: v for k, v in self.health().items() if k != "ok"},
                **({"tracking": self.tracking.live()} if self.tracking is not None else {})}

    def history(self, seconds: float) -> list[dict[str, Any]]:
        return self.outbox.history(seconds) if self.outbox else []

    def health(self) -> dict[str, Any]:
        cap = self.capture
        camera = {"state": cap.state if cap else "failed", "source": cap.source.name if cap else self.config.source,
                  "error": cap.error if cap else "", "frames": cap.frames if cap else 0,
                  "dropped": cap.dropped if cap else 0, "bad_frames": self.bad_frames, "reconnects": cap.reconnects if cap else 0}
        detector = self.detector
        model = {"loaded": detector is not None, "configured": bool(self.config.model),
                 "name": detector.card.name if detector else None, "version": detector.card.version if detector else None,
                 "backend": detector.backend_name if detector else None, "error": self.model_error}
        outbox = {"state": self.sender.state if self.sender else "disabled",
                  "error": self.sender.error if self.sender else "",
                  "depth": self.outbox.depth() if self.outbox else 0,
                  "dropped": self.outbox.dropped() if self.outbox else 0,
                  "sent": self.sender.sent if self.sender else 0, "write_errors": self.store_errors}
        ok = camera["state"] in ("ok", "ended") and (detector is not None or not self.config.model)
        return {"ok": ok, "camera": camera, "model": model, "outbox": outbox}

    def model_card(self) -> ModelCard | None:
        return self.detector.card if self.detector else None

    def detect(self, image: np.ndarray) -> Detections:
        detector = self.detector
        return detector.detect(image) if detector else Detections.empty()
