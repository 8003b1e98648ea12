"""Tracks and crossings in the experiment record, and their part of the experiment summary.

The frame loop hands every batch of points to `TrackLog.add()`; `track` and `crossing` points
that carry an `experiment` tag are kept (in memory, committed at most once a second, in the
same SQLite file as the experiment record), so the summary and the report need no InfluxDB.
Unique objects of an experiment are the tracks (>= tracking.min_frames frames) that ended while
it ran; speeds are the same average path speeds as the `track` points.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from device.metrics.disk import open_wal
from device.metrics.points import Point
from device.tracking.settings import TrackingSettings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracks (experiment TEXT NOT NULL, ts_us INTEGER NOT NULL, class TEXT NOT NULL,
    frames INTEGER, duration_s REAL, speed_px_s REAL, speed_um_s REAL, straightness REAL, path_px REAL);
CREATE INDEX IF NOT EXISTS tracks_by_experiment ON tracks (experiment, ts_us);
CREATE TABLE IF NOT EXISTS crossings (experiment TEXT NOT NULL, ts_us INTEGER NOT NULL, class TEXT NOT NULL,
    direction TEXT NOT NULL, count INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS crossings_by_experiment ON crossings (experiment, ts_us);
"""
_TRACK_FIELDS = ("frames", "duration_s", "speed_px_s", "speed_um_s", "straightness", "path_px")
FLUSH_S = 1.0


class TrackLog:
    """Buffered writer and reader of the `tracks` and `crossings` tables."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._tracks: list[tuple[Any, ...]] = []
        self._crossings: list[tuple[Any, ...]] = []
        self._last_flush = time.monotonic()
        self._db().executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = open_wal(self.path)  # the same pragmas as the experiment store in this file
        return db

    def add(self, points: Iterable[Point]) -> None:
        """Keep the experiment's `track` and `crossing` points (others are ignored)."""
        with self._lock:
            for p in points:
                experiment = p.tags.get("experiment")
                if not experiment:
                    continue
                if p.measurement == "track":
                    self._tracks.append((experiment, p.ts_us, p.tags.get("class", ""), *(p.fields.get(f) for f in _TRACK_FIELDS)))
                elif p.measurement == "crossing" and p.fields.get("count"):
                    self._crossings.append((experiment, p.ts_us, p.tags.get("class", ""), p.tags.get("direction", ""), p.fields["count"]))
        if time.monotonic() - self._last_flush >= FLUSH_S:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            tracks, crossings = self._tracks, self._crossings
            self._tracks, self._crossings = [], []
            self._last_flush = time.monotonic()
        if not tracks and not crossings:
            return
        db = self._db()
        db.execute("BEGIN")
        db.executemany(f"INSERT INTO tracks (experiment, ts_us, class, {', '.join(_TRACK_FIELDS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", tracks)
        db.executemany("INSERT INTO crossings (experiment, ts_us, class, direction, count) VALUES (?, ?, ?, ?, ?)", crossings)
        db.execute("COMMIT")

    def rows(self, experiment: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        db = self._db()
        tracks = db.execute("SELECT class, speed_px_s, speed_um_s, straightness, duration_s FROM tracks WHERE experiment = ?",
                            (experiment,)).fetchall()
        crossings = db.execute("SELECT class, direction, SUM(count) FROM crossings WHERE experiment = ? GROUP BY class, direction",
                               (experiment,)).fetchall()
        return tracks, crossings


def _speeds(rows: list[tuple[Any, ...]], motile_speed: float) -> dict[str, Any]:
    """Speed distribution of the tracks that have one (wholly in view for two frames or more)."""
    if not rows:
        return {"speed_tracks": 0}
    calibrated = all(r[2] is not None for r in rows)
    speeds = np.asarray([r[2] if calibrated else r[1] for r in rows], float)
    q25, median, q75 = (float(v) for v in np.percentile(speeds, [25, 50, 75]))
    return {"speed_tracks": len(rows), "speed_unit": "µm/s" if calibrated else "px/s", "speed_median": median,
            "speed_q25": q25, "speed_q75": q75, "motile_share": float((speeds > motile_speed).mean()),
            "straightness_mean": float(np.mean([r[3] for r in rows]))}


def tracking_summary(log: TrackLog, experiment: str, motile_speed: float) -> dict[str, Any]:
    """Per class: unique objects (finished tracks), speed median and quartiles, share motile,
    mean straightness; crossings per class and direction. Speeds in µm/s when every track of the
    class was calibrated, else px/s (`motile_speed` is read in the same unit)."""
    tracks, crossings = log.rows(experiment)
    by_class: dict[str, list[tuple[Any, ...]]] = {}
    for row in tracks:
        by_class.setdefault(row[0], []).append(row)
    classes: dict[str, Any] = {}
    for name, rows in by_class.items():
        classes[name] = {"unique": len(rows), "duration_median_s": float(np.median([r[4] for r in rows])),
                         **_speeds([r for r in rows if r[1] is not None], motile_speed)}
    counted: dict[str, dict[str, int]] = {}
    for name, direction, count in crossings:
        counted.setdefault(name, {"forward": 0, "reverse": 0})[direction] = int(count)
    return {"classes": classes, "crossings": counted, "unique_total": sum(c["unique"] for c in classes.values())}


def experiment_tracking(path: Path, experiment: str, log: TrackLog | None = None,
                        settings: TrackingSettings | None = None) -> dict[str, Any]:
    """The tracking part of an experiment's summary. With the running device's log (panel), it is
    flushed first and the device's motile threshold used; without (CLI on the data folder), the
    store is read as it is, with the default threshold."""
    if log is not None:
        log.flush()
    return tracking_summary(log or TrackLog(path), experiment, (settings or TrackingSettings()).motile_speed)
