"""The tracking stage of a model's pipeline: detections -> tracks -> unique counts, motility,
crossings, concentration -> metric points, live statistics and the overlay of the stream.

As a pipeline stage (device/pipeline.py) it runs on every analysed frame and leaves the track
ids (`extra["tracking"]`, a TrackOverlay) and the points that are due (`extra["points"]`) in
the frame's Analysis. The web side changes the line, the flow settings or resets the counts
through the same object from another thread (one lock, held well under a millisecond).
Everything a model's tracks produced stays with that model: when the model changes, the open
tracks first end under the old model's tags (no track spans two models).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from device.analysis import Analysis
from device.detections import Detections
from device.metrics.points import FieldValue, Point
from device.sources.capture import Frame
from device.tracking.concentration import (
    Concentration,
    concentration,
    flowed_volume_ul,
    imaged_volume_ul,
)
from device.tracking.crossing import DIRECTIONS, CrossingCounter, CrossingLine
from device.tracking.motility import MotilityStats, TrackRecord, records
from device.tracking.overlay import TrackOverlay
from device.tracking.points import track_point
from device.tracking.settings import TrackingSettings
from device.tracking.tracker import FieldTracker

LIVE_SETTINGS = frozenset({"flow_rate_ul_min", "depth_um", "show_ids"})


class TrackingStage:
    """Tracker plus everything measured from tracks, for one model at a time."""

    def __init__(self, settings: TrackingSettings, um_per_pixel: Callable[[], float | None] | float | None = None,
                 base_tags: Callable[[], dict[str, str]] | None = None) -> None:
        """`um_per_pixel` and `base_tags` may be callables: the calibration and the experiment tag
        change while the device runs."""
        self.settings = settings
        self._um = um_per_pixel if callable(um_per_pixel) else (lambda: um_per_pixel)  # type: ignore[misc]
        self._base_tags = base_tags or dict
        self._lock = threading.Lock()
        self._model: object = None
        self._classes: tuple[str, ...] = ()
        self._tags: dict[str, str] = {}
        self._frame_size: tuple[int, int] | None = None
        self._line: CrossingLine | None = None
        self._pending_line = settings.line
        self._reset(0.0)

    def _reset(self, t: float) -> None:
        n = len(self._classes)
        self.tracker = FieldTracker(self.settings)
        self.motility = MotilityStats(n, self.settings.motile_speed)
        self.unique = np.zeros(max(n, 1), np.int64)
        self.counter = CrossingCounter(self._line, n, t) if self._line else None
        self._last_points = t
        self._last_t = t
        self._frame_count = 0
        self._counting_from = 0  # frame count from which the chamber concentration is shown (reset_counts)

    @property
    def um_per_pixel(self) -> float | None:
        return self._um()

    # ---- the frame loop ------------------------------------------------------------------------
    def __call__(self, frame: Frame, analysis: Analysis) -> Analysis:
        """The pipeline stage: a frame the model did not analyse passes untouched (its objects
        are neither seen nor missed)."""
        if analysis.detections is None or analysis.card is None:
            return analysis
        tags = {**self._base_tags(), "slot": analysis.pipeline, "model": analysis.card.name, "model_version": analysis.card.version}
        overlay, points = self.update(analysis.detections, frame.captured_at, frame.image.shape[:2], analysis.card,
                                      analysis.card.classes, tags)
        before = list(analysis.extra.get("points", ()))  # type: ignore[call-overload]
        return replace(analysis, extra={**analysis.extra, "tracking": overlay, "points": before + points})

    def update(self, detections: Detections, t: float, shape: tuple[int, int], model: object,
               classes: Sequence[str], tags: dict[str, str]) -> tuple[TrackOverlay, list[Point]]:
        """Track one frame (`t` capture time in s, `shape` (height, width)); returns the overlay
        and the points due: `track` for every track that ended, and the periodic points."""
        with self._lock:
            points: list[Point] = []
            if model is not self._model or tags.get("experiment") != self._tags.get("experiment"):
                # a new model, or an experiment starting or stopping: every open track ends under the
                # old tags and counting starts afresh, so no track spans two models or experiments
                points += self._close_locked(t)
                self._model, self._classes = model, tuple(classes)
                self._reset(t)
            self._tags = dict(tags)
            if self._frame_size != (shape[1], shape[0]):
                self._frame_size = (shape[1], shape[0])
                self._apply_pending_line(t)
            step = self.tracker.update(detections, t, shape)
            np.add.at(self.unique, step.confirmed[step.confirmed < len(self.unique)], 1)
            if self.counter is not None and len(step.moved_rows):
                self.counter.add(step.moved_from, step.moved_to, step.moved_rows["tid"], step.moved_rows["cls"])
            points += self._finish(records(step.ended), t)
            self._last_t, self._frame_count = t, self._frame_count + 1
            if t - self._last_points >= self.settings.interval_s:
                points += self._interval_points(t)
            return self._overlay(step.ids, step.reappeared), points

    def close(self, t: float) -> list[Point]:
        """End all open tracks (model switch, shutdown) and emit the last periodic points."""
        with self._lock:
            points = self._close_locked(t)
            self._reset(t)
            return points

    def _close_locked(self, t: float) -> list[Point]:
        if self._model is None:
            return []
        points = self._finish(records(self.tracker.close()), t)
        return points + self._interval_points(t)

    def _finish(self, finished: list[TrackRecord], t: float) -> list[Point]:
        if self.counter is not None and finished:
            self.counter.forget([r.track_id for r in finished])
        points = []
        for k, record in enumerate(finished):
            self.motility.add(record)
            name = self._classes[record.class_id] if record.class_id < len(self._classes) else str(record.class_id)
            points.append(track_point(record, {**self._tags, "class": name}, self._um(), int(t * 1e6) + k))
        return points

    # ---- periodic points -----------------------------------------------------------------------
    def _interval_points(self, t: float) -> list[Point]:
        self._last_points = t
        ts = int(t * 1e6)
        points = []
        for cid, name in enumerate(self._classes):
            fields: dict[str, FieldValue] = {"unique": int(self.unique[cid]),
                                             "open_tracks": int((self.tracker.rows["cls"] == cid).sum())}
            fields.update(self.motility.summary(cid, self._um()))
            points.append(Point("track_summary", {**self._tags, "class": name}, fields, ts))
        if self.counter is not None:
            interval = self.counter.take_interval()
            for cid, name in enumerate(self._classes):
                for col, direction in enumerate(DIRECTIONS):
                    fields = {"count": int(interval[cid, col]), "total": int(self.counter.counts[cid, col])}
                    points.append(Point("crossing", {**self._tags, "class": name, "direction": direction}, fields, ts))
        for cid, name in enumerate(self._classes):
            conc = self._concentration(cid)
            if conc is not None:
                points.append(Point("concentration", {**self._tags, "class": name, "mode": self._mode()}, dict(conc.fields()), ts))
        return points

    def _mode(self) -> str:
        return "flow" if self.settings.flow_rate_ul_min else "chamber"

    def _concentration(self, cid: int) -> Concentration | None:
        """Flow: forward crossings / volume that flowed since the line was set. Chamber: objects of
        the class in the newest frame / imaged volume."""
        s = self.settings
        if self._frame_count < self._counting_from:  # just reset: shown again once tracks are confirmed anew
            return None
        if s.flow_rate_ul_min and self.counter is not None:
            return concentration(int(self.counter.counts[cid, 0]), flowed_volume_ul(s.flow_rate_ul_min, self._last_t - self.counter.started))
        um = self._um()
        if s.depth_um and um and self._frame_size and not s.flow_rate_ul_min:
            in_view = int(((self.tracker.rows["cls"] == cid) & (self.tracker.rows["missed"] == 0)).sum())
            return concentration(in_view, imaged_volume_ul(*self._frame_size, um, s.depth_um))
        return None

    # ---- overlay and live view -----------------------------------------------------------------
    def _overlay(self, ids: np.ndarray, reappeared: int = 0) -> TrackOverlay:
        shown = ids if self.settings.show_ids else None
        if self.counter is None:
            return TrackOverlay(shown, None, 0, reappeared=reappeared)
        line = self.counter.line
        nx, ny = (float(v) for v in line.normal)
        return TrackOverlay(shown, (line.x1, line.y1, line.x2, line.y2), int(self.counter.counts[:, 0].sum()), (nx, ny),
                            reappeared)

    def live(self) -> dict[str, Any]:
        """JSON-ready state for the live view: unique counts, open tracks, motility, crossings."""
        with self._lock:
            out: dict[str, Any] = {
                "unique": {name: int(self.unique[i]) for i, name in enumerate(self._classes)},
                "unique_total": int(self.unique.sum()), "open_tracks": len(self.tracker.rows),
                "min_frames": self.settings.min_frames, "show_ids": self.settings.show_ids,
                "drift_px_per_frame": [round(float(v), 3) for v in self.tracker.drift],
                "motility": {name: self.motility.summary(i, self._um()) for i, name in enumerate(self._classes)},
                "line": self._line.as_list() if self._line else None,
                "flow_rate_ul_min": self.settings.flow_rate_ul_min, "depth_um": self.settings.depth_um,
            }
            if self.counter is not None:
                counts = self.counter.counts
                out["crossings"] = {name: {d: int(counts[i, c]) for c, d in enumerate(DIRECTIONS)} for i, name in enumerate(self._classes)}
                out["crossed_forward"] = int(counts[:, 0].sum())
                out["crossed_reverse"] = int(counts[:, 1].sum())
            concs = {name: c.fields() for i, name in enumerate(self._classes) if (c := self._concentration(i)) is not None}
            if concs:
                out["concentration"] = concs
            return out

    def heartbeat_fields(self) -> dict[str, FieldValue]:
        with self._lock:
            return {"unique_count": int(self.unique.sum()), "open_tracks": len(self.tracker.rows)}

    # ---- settings from the panel ----------------------------------------------------------------
    def set_line(self, coords: object | None) -> list[float] | None:
        """Set (or with None remove) the counting line; LineError leaves the old one in place."""
        with self._lock:
            size = self._frame_size
            line = None if coords is None else CrossingLine.checked(coords, *(size if size else (None, None)))
            self._line = line
            self._pending_line = None
            self.counter = CrossingCounter(line, len(self._classes), self._last_t) if line else None
            return line.as_list() if line else None

    def _apply_pending_line(self, t: float) -> None:
        """The configured line, once the frame size is known to check it against."""
        if self._pending_line is None:
            return
        assert self._frame_size is not None
        line = CrossingLine.checked(list(self._pending_line), *self._frame_size)
        self._line, self._pending_line = line, None
        self.counter = CrossingCounter(line, len(self._classes), t)

    def configure(self, changes: dict[str, Any]) -> TrackingSettings:
        """Set flow rate, depth or the id toggle from the panel. The whole settings are validated
        first, so a bad value (a negative flow rate) raises and changes nothing."""
        unknown = set(changes) - LIVE_SETTINGS
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))} while running; live settings: {', '.join(sorted(LIVE_SETTINGS))}")
        with self._lock:
            # strict: the panel's JSON must send true/false and numbers, not "yes" or "2.5"
            updated = TrackingSettings.model_validate({**self.settings.model_dump(), **changes}, strict=True)
            self.settings = updated
            self.tracker.settings = updated
            return updated

    def reset_counts(self) -> None:
        """Start unique counts, motility, crossings and concentrations afresh (a new sample, a new
        experiment); open tracks go on, but only count again if they are confirmed anew. The chamber
        concentration (objects in view / imaged volume) is withheld for min_frames frames, so the
        figure shown right after a reset is never the old sample's."""
        with self._lock:
            self._counting_from = self._frame_count + self.settings.min_frames
            n = len(self._classes)
            self.motility = MotilityStats(n, self.settings.motile_speed)
            self.unique = np.zeros(max(n, 1), np.int64)
            self.counter = CrossingCounter(self._line, n, self._last_t) if self._line else None
