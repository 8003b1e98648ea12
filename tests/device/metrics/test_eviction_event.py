"""Eviction names the interval it lost: one `outbox_evicted` device_event (from, to, points) per hole."""

from __future__ import annotations

from pathlib import Path

from device.metrics.eviction import EVICTED_KIND
from device.metrics.outbox import Outbox
from device.metrics.points import Point
from device.metrics.sender import OutboxSender
from device.metrics.settings import InfluxSettings
from tests.conftest import Influx

TAGS = {"device": "scope-2", "project": "yeast", "experiment": "20261202-run"}
START_US = 1_764_000_000_000_000  # 2025-11-24, inside InfluxDB's default retention (infinite)


def _fill(box: Outbox, batches: int, start: int = 0) -> None:
    for batch in range(start, start + batches):
        box.add([Point("frame", TAGS, {"count": i, "note": "x" * 200}, START_US + batch * 1000 + i) for i in range(100)])


def _hole_events(box: Outbox) -> list[Point]:
    return [p for _, p in box.pending(100_000) if p.measurement == "device_event" and p.tags.get("kind") == EVICTED_KIND]


def test_an_evicted_interval_is_named_by_one_event(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_bytes=300_000, history_s=3600)
    _fill(box, 20)  # an outage under a small budget: add() itself evicts, several times
    box.maintain()
    dropped = box.dropped()
    assert dropped > 0
    frames = sorted(p.ts_us for _, p in box.pending(100_000) if p.measurement == "frame")
    events = _hole_events(box)
    assert len(events) == 1  # one contiguous hole, one event, widened while it waited
    event = events[0]
    assert event.fields["from_us"] == START_US  # the very first point is gone ...
    assert int(event.fields["to_us"]) < frames[0]  # ... up to just before the oldest one kept
    assert event.fields["points"] == dropped == 2000 - len(frames)
    assert {k: event.tags[k] for k in ("device", "project", "experiment")} == TAGS
    assert f"{dropped} unsent points from 2025-11-24T" in str(event.fields["message"])


def test_the_newest_event_takes_over_when_an_event_is_evicted(tmp_path: Path) -> None:
    """A long outage evicts the events too: what is left still names the whole hole."""
    box = Outbox(tmp_path / "o.sqlite", max_bytes=200_000, history_s=3600)
    box._hole_event = None
    for round_ in range(6):
        _fill(box, 10, start=round_ * 10)
        box.maintain()
        box._hole_event = None  # as after a restart: the next hole gets a new event row
    events = _hole_events(box)
    assert events, "the hole has an event"
    assert min(int(e.fields["from_us"]) for e in events) == START_US
    assert sum(int(e.fields["points"]) for e in events) == box.dropped()  # every dropped point named once
    frames = [p.ts_us for _, p in box.pending(100_000) if p.measurement == "frame"]
    assert max(int(e.fields["to_us"]) for e in events) < min(frames)


def test_no_event_when_only_sent_history_goes(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_bytes=300_000, history_s=3600, sending=False)
    _fill(box, 20)
    box.maintain()
    assert box.dropped() == 0
    assert not [p for _, p in box.pending(100_000) if p.measurement == "device_event"]
    rows = box._db().execute("SELECT COUNT(*) FROM points WHERE measurement = 'device_event'").fetchone()[0]
    assert rows == 0


def test_the_hole_reaches_influxdb(influx: Influx, tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_bytes=300_000, history_s=3600)
    _fill(box, 20)
    box.maintain()
    sender = OutboxSender(box, InfluxSettings(url=influx.url, bucket=influx.database))
    sender.drain()
    rows = influx.rows(f"SELECT * FROM \"device_event\" WHERE \"kind\" = '{EVICTED_KIND}'")
    assert len(rows) == 1
    assert rows[0]["from_us"] == START_US and rows[0]["points"] == box.dropped()
    assert rows[0]["device"] == "scope-2" and rows[0]["experiment"] == "20261202-run"
    kept = influx.rows('SELECT count("count") AS n FROM "frame"')[0]["n"]
    assert kept == 2000 - box.dropped()
