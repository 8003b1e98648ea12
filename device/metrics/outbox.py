"""The durable outbox: every point is committed to SQLite (WAL) before anything tries to send it.

Points leave the queue only after InfluxDB accepted them (`mark_sent`), so a crash, SIGKILL or an
hour-long outage loses nothing; replays are harmless because a point's identity is its
measurement + tags + timestamp. Sent `frame`/`class_stats` points stay a while as the panel's
recent history; with no InfluxDB configured every point is stored as already sent (history only).
A disk budget evicts the oldest points first, counting unsent ones as dropped.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from device.metrics.points import Point, encode_line, series_key

HISTORY_MEASUREMENTS = ("frame", "class_stats")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_us INTEGER NOT NULL,
    measurement TEXT NOT NULL,
    tags TEXT NOT NULL,
    fields TEXT NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS points_queue ON points(sent, id);
CREATE INDEX IF NOT EXISTS points_history ON points(measurement, ts_us);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


_COMPACT = json.JSONEncoder(separators=(",", ":")).encode


class Outbox:
    """SQLite-backed queue + recent history; safe to use from several threads (one connection each)."""

    def __init__(self, path: Path, max_bytes: int, history_s: float, sending: bool = True) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.history_s = history_s
        self.sending = sending
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        db = self._db()
        columns = [row[1] for row in db.execute("PRAGMA table_info(points)")]
        if columns and "fields" not in columns:  # a pre-release layout: keep it aside, start fresh
            db.execute(f"ALTER TABLE points RENAME TO points_old_{int(time.time())}")
            db.execute("DROP INDEX IF EXISTS points_queue")
            db.execute("DROP INDEX IF EXISTS points_history")
        db.executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives process crashes (SIGKILL)
            db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in maintain(), never in the frame loop
            self._local.db = db
        return db

    def add(self, points: Iterable[Point]) -> None:
        """Commit points durably (one transaction); never touches the network."""
        sent = 0 if self.sending else 1
        dumps = _COMPACT
        rows = [(p.ts_us, p.measurement, dumps(p.tags), dumps(p.fields), sent) for p in points]
        db = self._db()
        db.execute("BEGIN")
        db.executemany("INSERT INTO points (ts_us, measurement, tags, fields, sent) VALUES (?, ?, ?, ?, ?)", rows)
        db.execute("COMMIT")

    def pending(self, limit: int) -> list[tuple[int, Point]]:
        """The oldest unsent points, oldest first."""
        rows = self._db().execute(
            "SELECT id, ts_us, measurement, tags, fields FROM points WHERE sent = 0 ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [(row_id, Point(m, json.loads(tags), json.loads(fields), ts)) for row_id, ts, m, tags, fields in rows]

    def pending_lines(self, limit: int, after_id: int = 0) -> tuple[list[int], list[str]]:
        """The oldest unsent points (after `after_id`) as line protocol, oldest first: the sender's
        fast path (a series key is encoded once per batch, not once per point)."""
        rows = self._db().execute(
            "SELECT id, ts_us, measurement, tags, fields FROM points WHERE sent = 0 AND id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        keys: dict[tuple[str, str], str] = {}
        lines = []
        for _, ts_us, measurement, tags, fields in rows:
            key = keys.get((measurement, tags))
            if key is None:
                key = keys[(measurement, tags)] = series_key(measurement, json.loads(tags))
            lines.append(encode_line(key, json.loads(fields), ts_us))
        return [row[0] for row in rows], lines

    def mark_sent(self, ids: list[int]) -> None:
        """InfluxDB accepted these: keep history measurements as history, delete the rest."""
        if not ids:
            return
        db = self._db()
        db.execute("BEGIN")
        db.execute("CREATE TEMP TABLE IF NOT EXISTS acked (id INTEGER PRIMARY KEY)")
        db.executemany("INSERT OR IGNORE INTO acked (id) VALUES (?)", ((i,) for i in ids))
        marks = ",".join("?" * len(HISTORY_MEASUREMENTS))
        db.execute(f"DELETE FROM points WHERE id IN (SELECT id FROM acked) AND measurement NOT IN ({marks})", HISTORY_MEASUREMENTS)
        db.execute("UPDATE points SET sent = 1 WHERE id IN (SELECT id FROM acked)")
        db.execute("DELETE FROM acked")
        db.execute("COMMIT")

    def depth(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM points WHERE sent = 0").fetchone()[0])

    def dropped(self) -> int:
        row = self._db().execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    def used_bytes(self) -> int:
        db = self._db()
        pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages * db.execute("PRAGMA page_size").fetchone()[0])

    def maintain(self, now: float | None = None) -> int:
        """Forget history older than `history_s`, then evict oldest-first to stay inside the disk
        budget; returns how many unsent points had to be dropped (also added to the counter)."""
        cutoff = int(((time.time() if now is None else now) - self.history_s) * 1e6)
        db = self._db()
        db.execute("DELETE FROM points WHERE sent = 1 AND ts_us < ?", (cutoff,))
        db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        dropped = 0
        for _ in range(100):
            used = self.used_bytes()
            if used <= self.max_bytes:
                break
            total = db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
            if not total:
                break
            excess = used - int(self.max_bytes * 0.9)
            n = max(1, min(total, int(total * excess / used) + 1))
            db.execute("BEGIN")
            unsent = db.execute(
                "SELECT COUNT(*) FROM (SELECT sent FROM points ORDER BY id LIMIT ?) WHERE sent = 0", (n,)
            ).fetchone()[0]
            db.execute("DELETE FROM points WHERE id IN (SELECT id FROM points ORDER BY id LIMIT ?)", (n,))
            db.execute("INSERT INTO counters (name, value) VALUES ('dropped', ?) "
                       "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (unsent,))
            db.execute("COMMIT")
            dropped += int(unsent)
        return dropped

    def history(self, seconds: float, max_frames: int = 3000) -> list[dict[str, Any]]:
        """Recent `frame` points with their per-class counts, oldest first (the panel's charts)."""
        since = int((time.time() - seconds) * 1e6)
        rows = self._db().execute(
            "SELECT ts_us, measurement, tags, fields FROM points WHERE measurement IN ('frame', 'class_stats') "
            "AND ts_us >= ? ORDER BY ts_us", (since,)
        ).fetchall()
        frames: dict[tuple[int, str], dict[str, Any]] = {}  # several models write the same frame: one entry each
        for ts_us, measurement, tags_text, fields_text in rows:
            tags, fields = json.loads(tags_text), json.loads(fields_text)
            entry = frames.setdefault((ts_us, tags.get("model", "")), {"time": ts_us / 1e6, "classes": {}})
            if measurement == "frame":
                entry.update(fields)
                entry["model"] = tags.get("model", "")
            else:
                entry["classes"][tags.get("class", "")] = fields
        ordered = [frames[k] for k in sorted(frames)]
        step = max(1, len(ordered) // max_frames)
        return ordered[::step] if step > 1 else ordered

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
