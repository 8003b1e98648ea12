"""The running device's loop and threads: capture -> feed.analyse -> publisher.publish.

device/app.py wires the parts (device/parts.py); `Runtime` starts the threads that run beside the
loop (capture, outbox sender), runs the loop, and stops it all in order. The loop owns nothing
slow: points go to the durable outbox and a sender thread ships them, and JPEGs are encoded only
when a viewer asks for one.
"""

from __future__ import annotations

import logging
import threading
import time

from device.drift.stage import drift_message
from device.parts import DeviceParts
from device.tracking.stage import TrackingStage

log = logging.getLogger(__name__)


class Runtime:
    """One device's loop. Build it with device/app.py `build_device`, `start()`, then `run()`."""

    def __init__(self, parts: DeviceParts) -> None:
        self.parts = parts
        self._stop = threading.Event()

    def start(self) -> Runtime:
        """The threads beside the loop: the outbox sender and the capture."""
        self.parts.sender.start()
        self.parts.capture.start()
        if self.parts.inbox is not None:
            self.parts.inbox.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def run(self, max_frames: int | None = None) -> int:
        """capture -> analyse (every model) -> publish until stopped, the source ends or max_frames."""
        parts = self.parts
        capture, feed, publisher, heartbeat = parts.capture, parts.feed, parts.publisher, parts.heartbeat
        parts.events("started", f"run {parts.run_id}, source {parts.config.source}, model {feed.label}")
        heartbeat.start()
        while not self._stop.is_set() and (max_frames is None or publisher.processed < max_frames):
            heartbeat.beat_if_due()
            frame = capture.get(timeout=0.5)
            if frame is None:
                if capture.finished:
                    break
                continue
            parts.calibration.seen(frame)  # a file's own pixel size applies from its own frame on
            result = feed.analyse(frame, parts.calibration())
            publisher.publish(result)
            if parts.inbox is not None:
                parts.inbox.consider(frame, result.analyses, drift_message(result.pipelines))
        heartbeat.beat_if_due(force=True)
        return publisher.processed

    def end_tracks(self) -> None:
        """End every model's open tracks now (shutdown): their `track` points are written."""
        parts = self.parts
        for pipeline in parts.feed.pipelines:
            for stage in pipeline.stages:
                if isinstance(stage, TrackingStage):
                    points = stage.close(time.time())
                    parts.store(points)
                    if parts.track_log is not None:
                        parts.track_log.add(points)
        if parts.track_log is not None:
            parts.track_log.flush()

    def shutdown(self, flush_timeout: float = 30.0) -> None:
        """Stop capture, end tracks and the experiment writer, push what is queued (bounded wait),
        stop the sender and the models' background work."""
        parts = self.parts
        parts.capture.stop()
        self.end_tracks()
        if parts.experiments is not None:
            parts.experiments.close()
        if not parts.sender.flush(flush_timeout):
            log.warning("InfluxDB did not take every point before exit; %d stay in the outbox for next time", parts.outbox.depth())
        parts.sender.stop()
        if parts.inbox is not None:
            parts.inbox.stop()
        parts.feed.close()
