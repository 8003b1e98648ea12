"""The durable outbox: every point is committed to SQLite (WAL) before anything tries to send it.

Points leave the queue only after InfluxDB accepted them (`mark_sent`), so a crash, SIGKILL or an
hour-long outage loses nothing; replays are harmless because a point's identity is its
measurement + tags + timestamp. Sent `frame`/`class_stats` points stay a while as the panel's
recent history; with no InfluxDB configured every point is stored as already sent (history only).
A disk budget (database + WAL + shared-memory index, see device/metrics/disk.py) evicts the
oldest points first, counting unsent ones as dropped and naming the hole in one `device_event`
(kind `outbox_evicted`: from, to, points). A point InfluxDB refuses as malformed, or one that
cannot be encoded, moves to the `dead_letters` table with the reason, so no single point can hold
up the queue (see OutboxSender). Every multi-statement write runs in a `BEGIN IMMEDIATE`
transaction that rolls back on error, so no failure leaves a connection wedged.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.metrics.disk import DiskBudget, footprint, write_transaction
from device.metrics.eviction import Hole, evict_oldest, name_hole
from device.metrics.points import Point, encode_line, series_key

log = logging.getLogger(__name__)

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
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    ts_us INTEGER NOT NULL,
    measurement TEXT NOT NULL,
    tags TEXT NOT NULL,
    fields TEXT NOT NULL,
    line TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""
_COUNT = ("INSERT INTO counters (name, value) VALUES (?, ?) "
          "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value")


_COMPACT = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(frozen=True)
class Refused:
    """One point InfluxDB will never take: its row id, the line sent and why it was refused."""

    id: int
    line: str
    reason: str


class Outbox:
    """SQLite-backed queue + recent history; safe to use from several threads (one connection each)."""

    def __init__(self, path: Path, max_bytes: int, history_s: float, sending: bool = True) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.budget = DiskBudget(max_bytes)
        self.history_s = history_s
        self.sending = sending
        self._hole_event: int | None = None  # row of the unsent event naming the current hole
        self.dead_letter_keep = max(10, min(1000, self.budget.rows_bytes // 8192))  # rows kept to inspect; all counted
        self.upkeep_due = threading.Event()  # set by writers near the budget; the sender's upkeep thread waits on it
        self._upkeep_lock = threading.Lock()  # one upkeep at a time: a writer past the budget waits for it
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        db = self._db()
        if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            # INCREMENTAL lets maintain() hand freed pages back to the disk; an existing file needs
            # one VACUUM to switch (a new one switches before its first table).
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            try:
                db.execute("VACUUM")
            except sqlite3.Error as exc:  # a full disk: freed pages are still reused, only not handed back
                log.warning("outbox: cannot switch to incremental vacuum (%s); continuing without", exc)
        columns = [row[1] for row in db.execute("PRAGMA table_info(points)")]
        if columns and "fields" not in columns:  # a pre-release layout: keep it aside, start fresh
            with write_transaction(db):
                db.execute(f"ALTER TABLE points RENAME TO points_old_{int(time.time())}")
                db.execute("DROP INDEX IF EXISTS points_queue")
                db.execute("DROP INDEX IF EXISTS points_history")
        with write_transaction(db):
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute(f"PRAGMA page_size={self.budget.page_size}")  # takes effect on a new file only
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives process crashes (SIGKILL)
            db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in maintain(), not on every commit
            db.execute(f"PRAGMA journal_size_limit={self.budget.wal_bytes}")
            self._local.db = db
        return db

    def reconnect(self) -> None:
        """Drop this thread's connection (whatever state an error left it in); the next call opens
        a fresh one. The sender calls it after any sqlite3 error."""
        db = getattr(self._local, "db", None)
        self._local.db = None
        if db is not None:
            try:
                db.close()
            except sqlite3.Error as exc:
                log.debug("closing a broken outbox connection: %s", exc)

    def add(self, points: Iterable[Point]) -> None:
        """Commit points durably (one transaction); never touches the network."""
        sent = 0 if self.sending else 1
        dumps = _COMPACT
        rows = [(p.ts_us, p.measurement, dumps(p.tags), dumps(p.fields), sent) for p in points]
        with write_transaction(self._db()) as db:
            db.executemany("INSERT INTO points (ts_us, measurement, tags, fields, sent) VALUES (?, ?, ?, ?, ?)", rows)
        self._keep_inside_budget()

    def _keep_inside_budget(self) -> None:
        """After a commit: ask for upkeep near the budget; past it, do the upkeep here and now
        (backpressure: a writer faster than the upkeep thread must not overrun the disk)."""
        total, wal = footprint(self.path)
        if not self.budget.upkeep_wanted(total, wal):
            return
        self.upkeep_due.set()
        if self.budget.upkeep_needed(total, wal):
            try:
                self.maintain()
            except sqlite3.Error as exc:  # the points are committed; the upkeep thread tries again
                log.debug("inline outbox upkeep failed: %s", exc)

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
        ids, lines, broken = [], [], []
        for row_id, ts_us, measurement, tags, fields in rows:
            try:
                key = keys.get((measurement, tags))
                if key is None:
                    key = keys[(measurement, tags)] = series_key(measurement, json.loads(tags))
                lines.append(encode_line(key, json.loads(fields), ts_us))
            except (ValueError, TypeError, AttributeError) as exc:  # never sendable: out of the queue
                broken.append(Refused(row_id, "", f"cannot encode as line protocol: {exc}"[:500]))
                continue
            ids.append(row_id)
        if broken:
            self.dead_letter(broken)
        return ids, lines

    def mark_sent(self, ids: list[int]) -> None:
        """InfluxDB accepted these: keep history measurements as history, delete the rest."""
        if not ids:
            return
        marks = ",".join("?" * len(HISTORY_MEASUREMENTS))
        with write_transaction(self._db()) as db:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS acked (id INTEGER PRIMARY KEY)")
            db.execute("DELETE FROM acked")
            db.executemany("INSERT OR IGNORE INTO acked (id) VALUES (?)", ((i,) for i in ids))
            db.execute(f"DELETE FROM points WHERE id IN (SELECT id FROM acked) AND measurement NOT IN ({marks})", HISTORY_MEASUREMENTS)
            db.execute("UPDATE points SET sent = 1 WHERE id IN (SELECT id FROM acked)")
            db.execute("DELETE FROM acked")

    def dead_letter(self, refused: Sequence[Refused]) -> None:
        """Move points InfluxDB will never take out of the queue into `dead_letters` (with the line
        sent and the reason), in one transaction; only the newest `dead_letter_keep` rows are kept,
        every one is counted."""
        if not refused:
            return
        refused = sorted(refused, key=lambda r: r.id)  # in queue order: the newest rows are the ones kept
        now = time.time()
        with write_transaction(self._db()) as db:
            moved = db.executemany(
                "INSERT INTO dead_letters (at, ts_us, measurement, tags, fields, line, reason) "
                "SELECT ?, ts_us, measurement, tags, fields, ?, ? FROM points WHERE id = ? AND sent = 0",
                ((now, r.line, r.reason, r.id) for r in refused)).rowcount
            db.executemany("DELETE FROM points WHERE id = ? AND sent = 0", ((r.id,) for r in refused))
            db.execute("DELETE FROM dead_letters WHERE id <= (SELECT MAX(id) FROM dead_letters) - ?",
                       (self.dead_letter_keep,))
            db.execute(_COUNT, ("dead_letters", max(moved, 0)))

    def dead_letters(self) -> int:
        """How many points were ever moved to the dead-letter table (/healthz, device_status)."""
        row = self._db().execute("SELECT value FROM counters WHERE name = 'dead_letters'").fetchone()
        return int(row[0]) if row else 0

    def dead_letter_rows(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest dead letters, newest first: what was refused, when and why."""
        rows = self._db().execute(
            "SELECT at, ts_us, measurement, tags, fields, line, reason FROM dead_letters ORDER BY id DESC LIMIT ?",
            (limit,)).fetchall()
        return [{"at": at, "ts_us": ts_us, "measurement": m, "tags": json.loads(tags), "fields": json.loads(fields),
                 "line": line, "reason": reason} for at, ts_us, m, tags, fields, line, reason in rows]

    def depth(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM points WHERE sent = 0").fetchone()[0])

    def dropped(self) -> int:
        row = self._db().execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    def used_bytes(self) -> int:
        """Bytes the rows and indexes take (free pages not counted)."""
        db = self._db()
        pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages * db.execute("PRAGMA page_size").fetchone()[0])

    def disk_bytes(self) -> int:
        """The whole footprint on disk: database + WAL + shared-memory index (what the budget bounds)."""
        return footprint(self.path)[0]

    def maintain(self, now: float | None = None) -> int:
        """Forget history older than `history_s`, evict oldest-first until the rows fit their share
        of the disk budget, give free pages back and checkpoint the WAL; returns how many unsent
        points had to be dropped (also added to the counter)."""
        cutoff = int(((time.time() if now is None else now) - self.history_s) * 1e6)
        with self._upkeep_lock:  # concurrent checkpoints refuse each other (SQLITE_BUSY) instead of waiting
            return self._maintain_locked(cutoff)

    def _maintain_locked(self, cutoff: int) -> int:
        db = self._db()
        self._checkpoint(db)  # evict into an empty WAL: its deletes then fit the WAL's share
        with write_transaction(db):
            db.execute("DELETE FROM points WHERE sent = 1 AND ts_us < ?", (cutoff,))
        hole: Hole | None = None
        for _ in range(100):
            evicted = self._evict_once(db)
            if evicted is None:
                break
            hole = evicted.joined(hole)
        if hole is not None and hole.points:
            self._name_hole(db, hole)
        self._shrink(db)
        return hole.dropped if hole else 0

    def _evict_once(self, db: sqlite3.Connection) -> Hole | None:
        """Delete the oldest rows in one transaction if the rows are over their share; returns the
        unsent ones among them (points 0: only sent history went), or None when nothing had to go."""
        target = self.budget.rows_bytes
        with write_transaction(db):
            used = self.used_bytes()
            total = db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
            if used <= target or not total:
                return None
            excess = used - int(target * 0.95)  # small steps: each one's deletes must fit the WAL share
            hole = evict_oldest(db, max(1, min(total, int(total * excess / used) + 1)))
            db.execute(_COUNT, ("dropped", hole.dropped))
        return hole

    def _name_hole(self, db: sqlite3.Connection, hole: Hole) -> None:
        """Name the interval lost in a `device_event` (one per contiguous hole, see eviction.py)."""
        with write_transaction(db):
            self._hole_event, named, new = name_hole(db, hole, self._hole_event, 0 if self.sending else 1,
                                                     int(time.time() * 1e6))
        # a new hole is a warning; widening it (every upkeep of a long outage) is not news
        log.log(logging.WARNING if new else logging.DEBUG, "outbox over its disk budget: %s", named.describe())

    def _shrink(self, db: sqlite3.Connection) -> None:
        """Give free pages back to the disk only when the file is well over its share (a smaller
        budget than last run, a long outage): freed pages are otherwise reused by the next points,
        and moving pages costs WAL space. Then checkpoint."""
        page, count, free = (int(db.execute(f"PRAGMA {name}").fetchone()[0])
                             for name in ("page_size", "page_count", "freelist_count"))
        if count * page > self.budget.rows_bytes and free * page > self.budget.rows_bytes // 4:
            db.execute("PRAGMA incremental_vacuum").fetchall()
        self._checkpoint(db)

    def _checkpoint(self, db: sqlite3.Connection) -> None:
        """TRUNCATE (the WAL file shrinks to zero) when the WAL or the whole footprint is large,
        else PASSIVE (never waits for the frame loop)."""
        total, wal = footprint(self.path)
        large = self.budget.upkeep_wanted(total, wal)
        db.execute(f"PRAGMA wal_checkpoint({'TRUNCATE' if large else 'PASSIVE'})").fetchall()

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
            slot = tags.get("slot", tags.get("model", ""))  # two slots may run one bundle: one entry each
            entry = frames.setdefault((ts_us, slot), {"time": ts_us / 1e6, "classes": {}})
            if measurement == "frame":
                entry.update(fields)
                entry["model"], entry["slot"] = tags.get("model", ""), slot
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
