"""The experiment record is committed with each frame, agrees with the frame's tags across a racing
start/stop, and a store that refuses a commit keeps the rows for the next try (issue 21, item 9)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from device.experiments.quality import FrameQuality
from device.experiments.recorder import ExperimentRecorder, FrameContext
from device.experiments.store import ExperimentRequest, ExperimentStore
from tests.conftest import dets

QUALITY = FrameQuality(focus=1.0, saturated=0.0, dark=0.0)
CONTEXT = FrameContext(["cell"], "peaks", "1", None, (240, 320))


def _recorder(tmp_path: Path) -> ExperimentRecorder:
    return ExperimentRecorder(ExperimentStore(tmp_path / "experiments.sqlite"), "scope", "lab", lambda *args: None)


def _committed(path: Path, experiment: str) -> list[int]:
    """What another process (the CLI export, or a reader after a SIGKILL) sees now."""
    with sqlite3.connect(path) as db:
        return [ts for (ts,) in db.execute("SELECT ts_us FROM frames WHERE experiment = ? ORDER BY ts_us", (experiment,))]


def test_a_frame_is_in_the_store_as_soon_as_record_returns(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)  # no writer thread: nothing flushes behind the loop's back
    experiment = recorder.start(ExperimentRequest(name="durable"), {})
    for i in range(3):
        recorder.tags()
        recorder.record(1_000 + i, i, QUALITY, "ok", dets([[1, 1, 5, 5]]), CONTEXT)
        assert _committed(recorder.store.path, experiment.id) == [1_000 + j for j in range(i + 1)]
    with sqlite3.connect(recorder.store.path) as db:
        assert db.execute("SELECT COUNT(*) FROM objects WHERE experiment = ?", (experiment.id,)).fetchone()[0] == 3


def test_a_stop_between_the_tags_and_the_record_keeps_the_tagged_frame(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)
    experiment = recorder.start(ExperimentRequest(name="racing stop"), {})
    assert recorder.tags() == {"experiment": experiment.id}  # the frame's points carry the tag ...
    recorder.stop()  # ... the panel stops it on another thread ...
    recorder.record(2_000, 0, QUALITY, "ok", dets([]), CONTEXT)  # ... and the frame still lands in its record
    assert _committed(recorder.store.path, experiment.id) == [2_000]
    assert recorder.tags() == {}
    recorder.record(2_001, 1, QUALITY, "ok", dets([]), CONTEXT)  # the next frame is outside it
    assert _committed(recorder.store.path, experiment.id) == [2_000]


def test_a_start_between_the_tags_and_the_record_records_nothing_untagged(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)
    assert recorder.tags() == {}  # the frame's points carry no experiment
    experiment = recorder.start(ExperimentRequest(name="racing start"), {})
    recorder.record(3_000, 0, QUALITY, "ok", dets([]), CONTEXT)
    assert _committed(recorder.store.path, experiment.id) == []
    recorder.tags()
    recorder.record(3_001, 1, QUALITY, "ok", dets([]), CONTEXT)
    assert _committed(recorder.store.path, experiment.id) == [3_001]


class _Refusing:
    """The store's add_record refuses while `locked` (a disk full, a lock held too long)."""

    def __init__(self, store: ExperimentStore) -> None:
        self.store, self.locked = store, True

    def __call__(self, frames: Any, objects: Any) -> None:
        if self.locked:
            raise sqlite3.OperationalError("database or disk is full")
        self.store.__class__.add_record(self.store, frames, objects)


def test_a_refused_commit_keeps_the_rows_for_the_next_flush(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)
    experiment = recorder.start(ExperimentRequest(name="full disk"), {})
    refusing = _Refusing(recorder.store)
    recorder.store.add_record = refusing  # type: ignore[method-assign]
    for i in range(3):
        recorder.tags()
        recorder.record(4_000 + i, i, QUALITY, "ok", dets([[1, 1, 5, 5]]), CONTEXT)
    recorder.flush()  # still refused: nothing lost, nothing written
    assert _committed(recorder.store.path, experiment.id) == [] and recorder.flush_errors >= 2
    refusing.locked = False
    recorder.flush()
    assert _committed(recorder.store.path, experiment.id) == [4_000, 4_001, 4_002]
    recorder.tags()
    recorder.record(4_003, 3, QUALITY, "ok", dets([]), CONTEXT)  # and back to committing per frame
    assert _committed(recorder.store.path, experiment.id) == [4_000, 4_001, 4_002, 4_003]


def test_the_store_and_the_track_log_open_experiments_sqlite_alike(tmp_path: Path) -> None:
    """Issue 20: one opener, so both connections to the file have the same durability."""
    from device.tracking.experiment import TrackLog

    path = tmp_path / "experiments.sqlite"
    for db in (ExperimentStore(path)._db(), TrackLog(path)._db()):
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: survives a SIGKILL, no fsync per commit
        assert db.isolation_level is None  # explicit transactions only
