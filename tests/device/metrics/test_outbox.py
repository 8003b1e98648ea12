import time
from pathlib import Path

import pytest

from device.metrics.outbox import Outbox
from device.metrics.points import Point
from device.metrics.sender import OutboxSender
from device.metrics.settings import InfluxSettings


def _points(n: int, start_us: int, padding: int = 0) -> list[Point]:
    tags = {"device": "d", "project": "p"}
    return [Point("frame", tags, {"count": i, "note": "x" * padding}, start_us + i) for i in range(n)]


class FlakyWriter:
    """Stands in for InfluxDB to test the sender's bookkeeping: fails while `down`."""

    def __init__(self) -> None:
        self.down = False
        self.lines: list[str] = []

    def write(self, lines: list[str]) -> None:
        if self.down:
            raise ConnectionError("influx is down")
        self.lines.extend(lines)

    def close(self) -> None:
        pass


def test_points_survive_reopen_and_leave_only_after_acceptance(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", 10**9, 3600)
    box.add(_points(5, 1000))
    box.close()
    reopened = Outbox(tmp_path / "o.sqlite", 10**9, 3600)
    writer = FlakyWriter()
    sender = OutboxSender(reopened, InfluxSettings(url="http://x", batch_size=3), writer)
    writer.down = True
    with pytest.raises(ConnectionError):
        sender.send_once()
    assert reopened.depth() == 5
    writer.down = False
    assert sender.send_once() == 3 and sender.send_once() == 2 and sender.send_once() == 0
    assert reopened.depth() == 0
    assert [line.rsplit(" ", 1)[1] for line in writer.lines] == ["1000", "1001", "1002", "1003", "1004"]


def test_sender_thread_retries_until_influx_is_back(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", 10**9, 3600)
    writer = FlakyWriter()
    writer.down = True
    sender = OutboxSender(box, InfluxSettings(url="http://x", flush_interval_s=0.05), writer).start()
    try:
        box.add(_points(10, 5000))
        deadline = time.monotonic() + 10
        while sender.state != "down" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sender.state == "down" and "influx is down" in sender.error and box.depth() == 10
        writer.down = False
        assert sender.flush(timeout=10)
        assert len(writer.lines) == 10 and sender.state == "ok"
    finally:
        sender.stop()


def test_disk_budget_drops_oldest_first_and_counts(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_bytes=300_000, history_s=3600)
    for batch in range(20):
        box.add(_points(100, batch * 1000, padding=200))
    box.maintain()
    dropped = box.dropped()  # the writers evicted too: past the budget add() does the upkeep itself
    assert dropped > 0
    assert box.disk_bytes() <= 300_000  # database + WAL + shared-memory index
    remaining = [r for r in box.pending(10_000) if r[1].measurement == "frame"]  # the rest: the hole's event
    assert len(remaining) == 2000 - dropped
    assert remaining[0][1].ts_us > 0 and remaining[-1][1].ts_us == 19 * 1000 + 99  # the newest survive


def test_local_store_keeps_history_without_influx(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", 10**9, history_s=60, sending=False)
    now = time.time()
    tags = {"device": "d", "project": "p", "model": "m", "model_version": "1"}
    old = int((now - 120) * 1e6)
    recent = [int((now - 10 + i) * 1e6) for i in range(3)]
    box.add([Point("frame", tags, {"count": 1}, old)])
    for i, ts in enumerate(recent):
        box.add([Point("frame", tags, {"count": i, "fps": 5.0}, ts),
                 Point("class_stats", {**tags, "class": "cell"}, {"count": i}, ts)])
    assert box.depth() == 0  # nothing to send: local store only
    history = box.history(30)
    assert [h["count"] for h in history] == [0, 1, 2]
    assert history[2]["classes"]["cell"]["count"] == 2 and history[0]["model"] == "m"
    assert len(box.history(300)) == 4
    box.maintain()
    assert len(box.history(300)) == 3  # older than history_s is forgotten


def test_drain_pipelines_batches_and_stops_at_the_first_refusal(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", 10**9, 3600)
    box.add(_points(10, 100))

    class RefusesSecondBatch(FlakyWriter):
        def write(self, lines: list[str]) -> None:
            self.down = bool(self.lines)
            super().write(lines)

    writer = RefusesSecondBatch()
    sender = OutboxSender(box, InfluxSettings(url="http://x", batch_size=4), writer)
    with pytest.raises(ConnectionError):
        sender.drain()
    assert len(writer.lines) == 4 and box.depth() == 6  # only the accepted batch left the outbox
    writer.lines.clear()
    plain = FlakyWriter()
    assert OutboxSender(box, InfluxSettings(url="http://x", batch_size=4), plain).drain() == 6
    assert [line.rsplit(" ", 1)[1] for line in plain.lines] == [str(100 + i) for i in range(4, 10)]
    assert box.depth() == 0


def test_the_wal_counts_against_the_budget_without_any_upkeep_thread(tmp_path: Path) -> None:
    """Commits alone (no sender, no maintain call) keep database + WAL + index inside the budget."""
    path = tmp_path / "o.sqlite"
    box = Outbox(path, max_bytes=1_000_000, history_s=3600)
    for batch in range(3000):
        box.add(_points(4, batch * 10, padding=40))
    sizes = {suffix: (tmp_path / f"o.sqlite{suffix}").stat().st_size for suffix in ("", "-wal", "-shm")}
    assert sum(sizes.values()) <= 1_000_000, sizes
    assert sizes["-wal"] <= 250_000 and box.dropped() > 0  # the WAL's share: 25 % of the budget
    assert box.disk_bytes() == sum(sizes.values())


def test_an_outbox_from_an_older_version_keeps_its_points_and_can_shrink(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "o.sqlite"
    old = Outbox(path, 10**9, 3600)
    old.add(_points(50, 1000))
    old.close()
    with sqlite3.connect(path) as db:  # as older versions left it: no auto_vacuum
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("PRAGMA auto_vacuum=NONE")
        db.execute("VACUUM")
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    box = Outbox(path, 10**9, 3600)
    assert box._db().execute("PRAGMA auto_vacuum").fetchone()[0] == 2 and box.depth() == 50
