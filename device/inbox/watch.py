"""The inbox beside the loop: looks at every frame's analyses, keeps those with a reason.

Deciding costs a few numpy operations per analysed frame; hashing and the PNG write happen only
for a frame with a reason, and on the inbox's own thread once `start()`ed (the loop never waits
for the disk: when the writer falls behind, frames are dropped and counted)."""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from device.analysis import Analysis
from device.inbox.phash import distances, phash
from device.inbox.qc import Agreement, qc_points
from device.inbox.reasons import Reason, frame_reasons
from device.inbox.settings import InboxSettings
from device.inbox.store import InboxStore
from device.metrics.points import Point
from device.sources.capture import Frame

log = logging.getLogger(__name__)


def model_boxes(analysis: Analysis) -> dict[str, Any]:
    """One model's boxes of the frame, as the record keeps them (proposals for the reviewer)."""
    detections, card = analysis.detections, analysis.card
    assert detections is not None
    return {"pipeline": analysis.pipeline, "model": card.label if card else None, "name": card.name if card else None,
            "version": card.version if card else None, "classes": list(card.classes) if card else [],
            "boxes": np.round(detections.xyxy.astype(float), 2).tolist(), "scores": np.round(detections.scores.astype(float), 4).tolist(),
            "class_ids": detections.class_ids.astype(int).tolist()}


class Inbox:
    """Chooses frames for review and hands them to the store (inline, or on its thread once started)."""

    def __init__(self, settings: InboxSettings, store: InboxStore, points: Callable[[list[Point]], None] | None = None,
                 tags: Callable[[], dict[str, str]] | None = None) -> None:
        self.settings = settings
        self.store = store
        self._points = points  # the device's point store (count QC points), None = not written
        self._tags = tags or dict
        self._random = random.Random(settings.seed)
        self._last: dict[str, float] = {}  # reason kind -> when a frame of it was last kept
        self.duplicates = 0  # frames with a reason that matched a kept one (perceptual hash)
        self.dropped = 0  # frames with a reason the writer had no room for
        self._queue: queue.Queue[tuple[np.ndarray, dict[str, Any]] | None] = queue.Queue(maxsize=4)
        self._thread: threading.Thread | None = None

    def consider(self, frame: Frame, analyses: Sequence[Analysis], drifting: str = "", now: float | None = None) -> list[Reason]:
        """Keep the frame when it has a reason (and that reason's interval has passed); returns the reasons kept."""
        if not self.settings.enabled:
            return []
        now = time.time() if now is None else now
        reasons = frame_reasons(analyses, self.settings, drifting, self._random.random())
        reasons = [r for r in reasons if now - self._last.get(r.kind, -1e18) >= self.settings.min_interval_s]
        if not reasons:
            return []
        code = phash(frame.image)
        if np.any(distances(code, self.store.hashes()) <= self.settings.hash_distance):
            self.duplicates += 1
            return []
        for reason in reasons:
            self._last[reason.kind] = now
        record = {"created": now, "frame_index": frame.index, "captured_at": frame.captured_at, "hash": f"{code:016x}",
                  "width": int(frame.image.shape[1]), "height": int(frame.image.shape[0]), "um_per_pixel": frame.um_per_pixel,
                  "reasons": [{"kind": r.kind, "text": r.text} for r in reasons],
                  "models": [model_boxes(a) for a in analyses if a.detections is not None]}
        if self._thread is None:
            self.store.add(frame.image, record)
        else:
            try:
                self._queue.put_nowait((frame.image, record))
            except queue.Full:
                self.dropped += 1
                return []
        return reasons

    def configure(self, settings: InboxSettings) -> None:
        """New reasons, caps and intervals from the next frame; smaller caps evict at once."""
        self.settings = settings
        self.store.resize(settings.max_frames, int(settings.max_mb * 1e6))

    def write_qc(self, name: str, version: str, rows: Sequence[Agreement]) -> int:
        """The running count QC of one model version as `count_qc` points; returns how many were written."""
        if self._points is None or not rows:
            return 0
        points = qc_points(name, version, rows, self._tags(), int(time.time() * 1e6))
        self._points(points)
        return len(points)

    def start(self) -> Inbox:
        self._thread = threading.Thread(target=self._write, name="inbox-writer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _write(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                self.store.add(*job)
            except (OSError, ValueError) as exc:
                log.warning("review inbox: a frame could not be kept: %s", exc)

    def status(self) -> dict[str, Any]:
        return {"frames": len(self.store.items()), "bytes": self.store.total_bytes(), "evicted": self.store.evicted,
                "duplicates": self.duplicates, "dropped": self.dropped}
