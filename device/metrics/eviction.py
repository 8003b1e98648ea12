"""Eviction under the outbox's disk budget, and the `device_event` that names the interval it lost.

Eviction drops the oldest rows first. Unsent ones are a hole in the record, so the hole gets one
`device_event` (kind `outbox_evicted`, fields `from_us`, `to_us`, `points` and a message), written
in the outbox like any point: Grafana and the experiment report can show it. While that event is
still unsent, later evictions widen it instead of writing another; if the event itself is evicted,
the next one takes over its range and count, so the newest event always names the whole hole.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

EVICTED_KIND = "outbox_evicted"
_HOLE_EVENT = "(measurement = 'device_event' AND tags LIKE '%\"kind\":\"" + EVICTED_KIND + "\"%')"
_OLDEST = "(SELECT id, sent, ts_us, measurement, tags, fields FROM points ORDER BY id LIMIT ?)"
_EVENT_TAGS = ("device", "project", "experiment")
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(frozen=True)
class Hole:
    """Unsent points lost to eviction: `dropped` now (the counter), `points` in the whole hole
    (with those an evicted event had named), their time range and the newest one's tags."""

    dropped: int
    points: int
    from_us: int
    to_us: int
    tags: dict[str, str]

    def joined(self, other: Hole | None) -> Hole:
        if other is None or not other.points:
            return self
        if not self.points:
            return Hole(self.dropped + other.dropped, other.points, other.from_us, other.to_us, other.tags or self.tags)
        later = other if other.to_us >= self.to_us else self
        return Hole(self.dropped + other.dropped, self.points + other.points, min(self.from_us, other.from_us),
                    max(self.to_us, other.to_us), later.tags or self.tags or other.tags)

    def describe(self) -> str:
        return f"{self.points} unsent points from {_iso(self.from_us)} to {_iso(self.to_us)} were dropped"

    def fields(self) -> dict[str, Any]:
        return {"message": f"outbox over its disk budget: {self.describe()}", "from_us": self.from_us,
                "to_us": self.to_us, "points": self.points}

    @classmethod
    def named_by(cls, fields_text: str) -> Hole:
        """The hole an earlier event names (0 points if its fields are not one)."""
        fields = json.loads(fields_text)
        try:
            return cls(0, int(fields["points"]), int(fields["from_us"]), int(fields["to_us"]), {})
        except (KeyError, TypeError, ValueError):
            return cls(0, 0, 0, 0, {})


def _iso(ts_us: int) -> str:
    return datetime.fromtimestamp(ts_us / 1e6, timezone.utc).isoformat(timespec="milliseconds")


def evict_oldest(db: sqlite3.Connection, n: int) -> Hole:
    """Delete the `n` oldest rows (inside the caller's transaction); the unsent data among them
    as a hole, merged with the holes named by any evicted unsent `outbox_evicted` event."""
    dropped, first, last = db.execute(
        f"SELECT COUNT(*), MIN(ts_us), MAX(ts_us) FROM {_OLDEST} WHERE sent = 0 AND NOT {_HOLE_EVENT}", (n,)).fetchone()
    newest = db.execute(f"SELECT tags FROM {_OLDEST} WHERE sent = 0 AND NOT {_HOLE_EVENT} ORDER BY id DESC LIMIT 1",
                        (n,)).fetchone()
    named = db.execute(f"SELECT fields FROM {_OLDEST} WHERE sent = 0 AND {_HOLE_EVENT}", (n,)).fetchall()
    db.execute("DELETE FROM points WHERE id IN (SELECT id FROM points ORDER BY id LIMIT ?)", (n,))
    tags = json.loads(newest[0]) if newest else {}
    hole = Hole(int(dropped), int(dropped), int(first or 0), int(last or 0), tags if isinstance(tags, dict) else {})
    for (fields_text,) in named:
        hole = hole.joined(Hole.named_by(fields_text))
    return hole


def name_hole(db: sqlite3.Connection, hole: Hole, previous: int | None, sent: int, now_us: int) -> tuple[int, Hole, bool]:
    """Write (or, while the last one is unsent, widen) the event naming `hole` inside the caller's
    transaction; returns the event's row id, the hole it names now and whether the row is new."""
    if previous is not None:
        row = db.execute("SELECT fields FROM points WHERE id = ? AND sent = 0", (previous,)).fetchone()
        if row is not None:
            widened = Hole.named_by(row[0]).joined(hole)
            db.execute("UPDATE points SET fields = ? WHERE id = ?", (_COMPACT(widened.fields()), previous))
            return previous, widened, False
    tags = {k: str(v) for k, v in hole.tags.items() if k in _EVENT_TAGS}
    cursor = db.execute("INSERT INTO points (ts_us, measurement, tags, fields, sent) VALUES (?, ?, ?, ?, ?)",
                        (now_us, "device_event", _COMPACT({**tags, "kind": EVICTED_KIND}), _COMPACT(hole.fields()), sent))
    return int(cursor.lastrowid or 0), hole, True
