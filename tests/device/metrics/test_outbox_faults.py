"""Fault injection on the outbox: eviction racing the frame loop while InfluxDB is unreachable,
then InfluxDB comes back. Real SQLite, real InfluxDB (behind a TCP gate that refuses connections
until it opens)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from device.metrics import sender as sender_module
from device.metrics.outbox import Outbox
from device.metrics.points import Point
from device.metrics.sender import OutboxSender
from device.metrics.settings import InfluxSettings
from tests.conftest import Influx
from tests.device.metrics.tcp_gate import TcpGate

BUDGET = 300_000  # bytes: the `outbox.max_mb: 0.3` the wedge was found with
SLACK = 0.10  # the whole footprint may pass the budget by at most this share (see docs/metrics.md)
CLASSES = ("cell", "crystal", "debris")


def footprint(path: Path) -> int:
    """Bytes on disk of the database, its WAL and its shared-memory index (what a full disk sees)."""
    return sum(os.stat(name).st_size for name in (f"{path}{s}" for s in ("", "-wal", "-shm")) if os.path.exists(name))


def frame_points(index: int, ts_us: int) -> list[Point]:
    """What one frame of the loop commits: a frame point and one class_stats point per class."""
    tags = {"device": "race", "project": "p", "model": "m", "model_version": "1"}
    out = [Point("frame", tags, {"count": 3, "fps": 30.0, "frame_index": index, "latency_ms": 12.5}, ts_us)]
    out += [Point("class_stats", {**tags, "class": c}, {"count": 1, "frame_index": index, "width_px_mean": 11.5}, ts_us)
            for c in CLASSES]
    return out


def repeat(stop: threading.Event, every_s: float, action: Callable[[], None], errors: list[str]) -> threading.Thread:
    """Run `action` every `every_s` until `stop`; errors are kept for the assertions, never raised."""
    def loop() -> None:
        while not stop.is_set():
            try:
                action()
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            stop.wait(every_s)
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


class FrameLoop:
    """Commits one frame's points every 2 ms, like a fast frame loop (one connection of its own)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.frames = 0
        self.start_us = int(time.time() * 1e6) - 60_000_000

    def commit_one(self) -> None:
        self.outbox.add(frame_points(self.frames, self.start_us + self.frames))
        self.frames += 1

    def expected_after_dropping(self, dropped: int) -> set[tuple[str, str, int]]:
        """Eviction is oldest-first in commit order: the kept points are all but the first `dropped`."""
        order = []
        for i in range(self.frames):
            order.append(("frame", "", i))
            order += [("class_stats", c, i) for c in CLASSES]
        return set(order[dropped:])


def arrived(influx: Influx) -> list[tuple[str, str, int]]:
    rows = [("frame", "", int(r["frame_index"])) for r in influx.rows('SELECT "frame_index" FROM "frame"')]  # type: ignore[call-overload]
    rows += [("class_stats", str(r["class"]), int(r["frame_index"]))  # type: ignore[call-overload]
             for r in influx.rows('SELECT "frame_index" FROM "class_stats" GROUP BY "class"')]
    return rows


@pytest.mark.slow
def test_eviction_racing_the_frame_loop_then_influx_returns(influx: Influx, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sender_module, "MAINTAIN_EVERY_S", 0.05)  # the sender's own eviction races too
    path = tmp_path / "outbox.sqlite"
    outbox = Outbox(path, BUDGET, history_s=3600)
    upstream = urlsplit(influx.url)
    gate = TcpGate((upstream.hostname or "127.0.0.1", upstream.port or 80))  # refuses connections until opened
    sender = OutboxSender(outbox, InfluxSettings(url=gate.url, bucket=influx.database, flush_interval_s=0.1, timeout_s=2))
    loop, stop, store_errors, evict_errors = FrameLoop(outbox), threading.Event(), [], []
    peak = [0]
    sender.start()
    threads = [
        repeat(stop, 0.002, loop.commit_one, store_errors),
        repeat(stop, 0.05, lambda: outbox.maintain() and None, evict_errors),
        repeat(stop, 0.005, lambda: peak.__setitem__(0, max(peak[0], footprint(path))), []),
    ]
    try:
        time.sleep(10.5)
        assert sender.state == "down", sender.state  # it really was unreachable all along
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        gate.open()
        assert sender.flush(timeout=60), f"the outbox never drained: depth {outbox.depth()}, influx {sender.state} {sender.error}"
        assert sender.state == "ok", sender.error  # /healthz tells the truth once InfluxDB answers
        dropped = outbox.dropped()
        assert not store_errors and not evict_errors, (store_errors[:3], evict_errors[:3])
        assert loop.frames >= 300 and 0 < dropped < 4 * loop.frames  # ~250 frames fit: most were evicted
        got = arrived(influx)
        assert len(got) == len(set(got)) == 4 * loop.frames - dropped  # every kept point, once
        assert set(got) == loop.expected_after_dropping(dropped)  # ... and exactly those: the newest
        assert peak[0] <= BUDGET * (1 + SLACK), f"outbox footprint peaked at {peak[0]:,} bytes (budget {BUDGET:,})"
    finally:
        stop.set()
        sender.stop()
        gate.close()


def test_a_commit_between_evictions_read_and_delete_wedges_nothing(tmp_path: Path) -> None:
    """The exact wedge: the frame loop commits after eviction counted its victims, before it deletes."""
    path = tmp_path / "outbox.sqlite"
    filler = Outbox(path, 10**9, history_s=3600)
    for i in range(300):
        filler.add(frame_points(i, 1_000_000 + i))
    evictor = Outbox(path, 60_000, history_s=3600)
    frame_loop = sqlite3.connect(path, timeout=0.2, isolation_level=None)
    fired: list[str] = []

    def commit_from_the_frame_loop(sql: str) -> None:
        if sql.startswith("DELETE FROM points WHERE id IN (SELECT id FROM points ORDER BY id") and not fired:
            try:
                frame_loop.execute("INSERT INTO points (ts_us, measurement, tags, fields) VALUES (1, 'frame', '{}', '{}')")
                fired.append("committed")
            except sqlite3.OperationalError:
                fired.append("waited: eviction holds the write lock")

    evictor._db().set_trace_callback(commit_from_the_frame_loop)
    dropped = evictor.maintain()  # used to raise "database is locked" and leave its transaction open
    evictor._db().set_trace_callback(None)
    assert fired and dropped > 0
    assert not evictor._db().in_transaction
    ids = [row_id for row_id, _ in evictor.pending(10)]
    evictor.mark_sent(ids)  # used to fail for good: "cannot start a transaction within a transaction"
    assert not {row_id for row_id, _ in evictor.pending(10_000)} & set(ids)
    frame_loop.close()


def test_the_sender_recovers_a_connection_an_error_left_in_a_transaction(tmp_path: Path) -> None:
    """Whatever state an sqlite3 error leaves the sender's connection in, it reconnects and goes on;
    meanwhile InfluxDB is reported as it is (up), the store error separately."""

    class WedgesOnce(Outbox):
        wedged = False

        def pending_lines(self, limit: int, after_id: int = 0) -> tuple[list[int], list[str]]:
            if not self.wedged:
                self.wedged = True
                self._db().execute("BEGIN")  # what the old eviction left behind on this connection
            return super().pending_lines(limit, after_id)

    box = WedgesOnce(tmp_path / "outbox.sqlite", 10**9, history_s=3600)
    box.add(frame_points(0, 5_000_000))

    class Accepts:
        lines: list[str] = []

        def write(self, lines: list[str]) -> None:
            self.lines.extend(lines)

        def close(self) -> None:
            pass

    writer = Accepts()
    sender = OutboxSender(box, InfluxSettings(url="http://influx", flush_interval_s=0.05), writer).start()
    try:
        assert sender.flush(timeout=15), f"stuck: {sender.state} {sender.error} / {sender.store_error}"
        assert sender.state == "ok" and box.wedged and len(set(writer.lines)) == 4
    finally:
        sender.stop()
