"""One point InfluxDB refuses never stops the rest: it goes to the dead letters, the rest arrives once.

Against the real InfluxDB 1.6 (behind the v2 write proxy) that `make test` starts: a field type
conflict passes every check of ours and is still refused with 400, exactly like a poisoned point
in the field. Before the fix the refused batch was retried forever and /healthz said "down".
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from device.metrics.outbox import Outbox
from device.metrics.points import FieldValue, Point
from device.metrics.sender import OutboxSender, refusal
from device.metrics.settings import InfluxSettings
from tests.conftest import Influx

TAGS = {"device": "scope-1", "project": "p"}


def _sender(influx: Influx, box: Outbox, bucket: str | None = None, batch_size: int = 5000) -> OutboxSender:
    return OutboxSender(box, InfluxSettings(url=influx.url, bucket=bucket or influx.database, batch_size=batch_size,
                                            flush_interval_s=0.05, timeout_s=5))


def _values(influx: Influx, measurement: str = "probe") -> list[int]:
    return sorted(int(r["value"]) for r in influx.rows(f'SELECT "value" FROM "{measurement}"'))  # type: ignore[call-overload]


def _probe(value: int | str, ts_us: int) -> Point:
    return Point("probe", TAGS, {"value": value}, ts_us)


def test_a_refused_point_first_in_the_queue_is_dead_lettered_and_the_rest_arrives_once(influx: Influx, tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", 10**9, 3600)
    sender = _sender(influx, box)
    box.add([_probe(0, 1_000)])
    assert sender.drain() == 1  # `value` is an integer field of `probe` from now on
    bad = [_probe("text", 2_000), _probe("again", 2_017), _probe("late", 2_049)]
    good = [_probe(i, 2_000 + i) for i in range(1, 50) if 2_000 + i not in (2_017, 2_049)]
    box.add([bad[0]])  # the oldest point is the poisoned one, as in the field
    box.add(good[:16] + [bad[1]] + good[16:] + [bad[2]])
    delivered = sender.drain()
    assert delivered == len(good)
    assert box.depth() == 0 and box.dead_letters() == 3
    assert _values(influx) == [0] + [p.fields["value"] for p in good]  # every good point, each once
    letters = box.dead_letter_rows()
    assert sorted(r["ts_us"] for r in letters) == [2_000, 2_017, 2_049]
    for row in letters:
        assert "field type conflict" in row["reason"] and row["reason"].startswith("HTTP 400")
        assert row["measurement"] == "probe" and row["tags"] == TAGS and isinstance(row["fields"]["value"], str)
        assert f'value="{row["fields"]["value"]}"' in row["line"]
    assert sender.state == "ok" and sender.error == ""  # InfluxDB answered: it is up


def test_the_running_sender_stays_ok_and_delivers_after_a_dead_letter(influx: Influx, tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", 10**9, 3600)
    sender = _sender(influx, box).start()
    try:
        box.add([_probe(1, 5_000)])
        assert sender.flush(timeout=20)
        box.add([_probe("conflict", 5_001), _probe(2, 5_002)])
        assert sender.flush(timeout=20), f"wedged: {sender.state} {sender.error}"
        box.add([_probe(3, 5_003)])  # and the queue keeps moving afterwards
        assert sender.flush(timeout=20)
        assert sender.state == "ok" and sender.error == "", (sender.state, sender.error)
        assert box.dead_letters() == 1 and sender.dead_lettered == 1 and "field type conflict" in sender.last_refusal
    finally:
        sender.stop()
    assert _values(influx) == [1, 2, 3]


@pytest.mark.parametrize(("measurement", "tag", "fields"), [
    ("frame", "model_version", {"count": 3}),
    ("device_status", "device", {"model": "peaks", "model_version": "2026.12\nevil", "fps": 9.5}),
    ("device_event", "kind", {"message": "model switched to peaks:2026.12\nevil"}),
])
def test_a_newline_in_a_tag_cannot_break_the_line(influx: Influx, tmp_path: Path, measurement: str, tag: str,
                                                  fields: dict[str, FieldValue]) -> None:
    """Past every entry check (a point built by hand): the encoder keeps it one line, so it and
    its neighbours arrive and no `evil` measurement is made up from the rest of the line. String
    fields keep their newline (InfluxDB takes it quoted)."""
    box = Outbox(tmp_path / "o.sqlite", 10**9, 3600)
    box.add([Point(measurement, {**TAGS, tag: "2026.12\nevil"}, fields, 7_000),
             Point(measurement, {**TAGS, tag: "1.0"}, fields, 7_001)])
    assert _sender(influx, box).drain() == 2
    rows = influx.rows(f'SELECT * FROM "{measurement}"')
    assert sorted(str(r[tag]) for r in rows) == ["1.0", "2026.12\ufffdevil"]
    assert all(r[k] == v for r in rows for k, v in fields.items())
    assert influx.query('SHOW MEASUREMENTS') == [{"name": "measurements", "columns": ["name"], "values": [[measurement]]}]
    assert box.dead_letters() == 0


def test_a_missing_database_is_influx_down_not_a_dead_letter(influx: Influx, tmp_path: Path) -> None:
    """404 is the destination's fault: every point stays queued for when the bucket exists."""
    box = Outbox(tmp_path / "o.sqlite", 10**9, 3600)
    box.add([_probe(i, 9_000 + i) for i in range(5)])
    sender = _sender(influx, box, bucket="no_such_database_here")
    with pytest.raises(Exception) as caught:
        sender.drain()
    assert getattr(caught.value, "status", None) == 404 and refusal(caught.value) is None
    assert box.depth() == 5 and box.dead_letters() == 0


def test_a_point_that_cannot_be_encoded_leaves_the_queue(influx: Influx, tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", 10**9, 3600)
    box.add([Point("probe", TAGS, {"value": math.nan}, 1), _probe(1, 2)])  # NaN only: no writable field
    assert _sender(influx, box).drain() == 1
    assert _values(influx) == [1] and box.depth() == 0 and box.dead_letters() == 1
    assert "no writable field" in box.dead_letter_rows()[0]["reason"]


class _Refusal(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(body)
        self.status, self.body = status, body.encode()


class _FailsAfter:
    """Refuses batches holding `bad` as InfluxDB would, and goes down after `calls` writes."""

    def __init__(self, bad: str, calls: int) -> None:
        self.bad, self.calls, self.lines = bad, calls, list[str]()

    def write(self, lines: list[str]) -> None:
        self.calls -= 1
        if self.calls < 0:
            raise ConnectionError("influx went away")
        if any(self.bad in line for line in lines):
            raise _Refusal(400, '{"error":"partial write: field type conflict"}')
        self.lines.extend(lines)

    def close(self) -> None:
        pass


def test_influx_going_down_while_a_batch_is_split_keeps_what_is_left(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", 10**9, 3600)
    box.add([_probe("bad", 1)] + [_probe(i, 1 + i) for i in range(1, 16)])
    writer = _FailsAfter('"bad"', calls=4)
    sender = OutboxSender(box, InfluxSettings(url="http://x", batch_size=100), writer)
    with pytest.raises(ConnectionError):
        sender.drain()
    assert len(writer.lines) + box.depth() + box.dead_letters() == 16  # nothing lost, nothing twice
    assert box.depth() > 0 and len(set(writer.lines)) == len(writer.lines)
    writer.calls = 100
    sender.drain()
    assert box.depth() == 0 and box.dead_letters() == 1 and len(writer.lines) == 15


@pytest.mark.parametrize(("status", "dead"), [(400, True), (422, True), (413, True), (401, False), (403, False),
                                              (404, False), (429, False), (500, False), (503, False)])
def test_only_the_points_fault_dead_letters(status: int, dead: bool) -> None:
    assert (refusal(_Refusal(status, '{"error":"x"}')) is not None) is dead
    assert refusal(ConnectionError("refused")) is None


def test_dead_letters_are_counted_but_only_the_newest_kept(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", 10**9, 3600)
    box.dead_letter_keep = 5
    writer = _FailsAfter('"bad"', calls=10**6)
    sender = OutboxSender(box, InfluxSettings(url="http://x", batch_size=100), writer)
    box.add([_probe("bad", i) for i in range(12)])
    started = time.monotonic()
    assert sender.drain() == 0 and time.monotonic() - started < 10
    assert box.dead_letters() == 12 and [r["ts_us"] for r in box.dead_letter_rows()] == [11, 10, 9, 8, 7]


def test_a_running_device_reports_influx_ok_while_it_dead_letters(influx: Influx, peak_bundle: Path, tmp_path: Path) -> None:
    """/healthz's outbox section (what `state` the sender is in) says ok: InfluxDB is up, one point was refused."""
    from device.config import DeviceConfig
    from device.health import status_fields
    from tests.device.runtime_helpers import facade, start_runtime, wait_for

    config = DeviceConfig.model_validate({
        "device_name": "scope-9", "project": "p", "source": "synthetic://?seed=2&width=320&height=240&fps=30",
        "model": str(peak_bundle), "data_dir": str(tmp_path), "port": 0, "status_interval_s": 0.5,
        "influx": {"url": influx.url, "bucket": influx.database, "flush_interval_s": 0.1}})
    runtime, thread = start_runtime(config)
    try:
        assert wait_for(lambda: bool(influx.query('SELECT count("count") FROM "frame"')), timeout=30)
        tags = {"device": "scope-9", "project": "p", "slot": "main", "model": "peaks", "model_version": "1.0.0"}
        conflicting = Point("frame", tags, {"count": "seven"}, int((time.time() - 5) * 1e6))  # in the same shard, where
        runtime.parts.outbox.add([conflicting])  # `count` is an integer field: InfluxDB answers 400
        assert wait_for(lambda: runtime.parts.outbox.dead_letters() == 1, timeout=30)
        before = int(influx.rows('SELECT count("count") AS n FROM "frame"')[0]["n"])  # type: ignore[call-overload]
        assert wait_for(lambda: int(influx.rows('SELECT count("count") AS n FROM "frame"')[0]["n"]) > before + 5,  # type: ignore[call-overload]
                        timeout=30)  # frames keep arriving after the refusal
        outbox = facade(runtime).health()["outbox"]
        assert outbox["state"] == "ok" and outbox["error"] == "" and outbox["dead_letters"] == 1, outbox
        assert "field type conflict" in runtime.parts.outbox.dead_letter_rows()[0]["reason"]
        assert status_fields(runtime.parts)["outbox_dead_letters"] == 1  # what device_status carries
    finally:
        runtime.stop()
        thread.join(timeout=10)
        runtime.shutdown()
