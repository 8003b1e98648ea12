"""An experiment run with a bundle that corrects dense counts keeps `count_estimate` per frame in
its record and its frames CSV, beside the box counts; a store from before the column keeps its
experiments and gains it."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

from device.experiments.quality import FrameQuality
from device.experiments.recorder import ExperimentRecorder, FrameContext
from device.experiments.report import frames_csv
from device.experiments.store import ExperimentRequest, ExperimentStore
from tests.conftest import dets

QUALITY = FrameQuality(focus=1.0, saturated=0.0, dark=0.0)


def _record(tmp_path: Path, estimates: dict[str, int] | None) -> list[dict[str, str]]:
    recorder = ExperimentRecorder(ExperimentStore(tmp_path / "experiments.sqlite"), "scope", "lab", lambda *args: None)
    experiment = recorder.start(ExperimentRequest(name="dense"), {})
    context = FrameContext(["cell", "debris"], "m", "1", None, (240, 320), estimates=estimates)
    recorder.tags()
    recorder.record(1_000, 0, QUALITY, "ok", dets([[1, 1, 5, 5], [9, 9, 15, 15]]), context)
    recorder.tags()
    recorder.record(2_000, 1, QUALITY, "out_of_focus", None, context)  # excluded: no count, no estimate
    return list(csv.DictReader(io.StringIO(frames_csv(recorder.store.frames(experiment.id), ["cell", "debris"]))))


def test_the_frames_csv_carries_the_corrected_counts_beside_the_box_counts(tmp_path: Path) -> None:
    analysed, excluded = _record(tmp_path, {"cell": 3, "debris": 0})
    assert (analysed["count"], analysed["count_cell"]) == ("2", "2")
    assert (analysed["count_estimate"], analysed["count_estimate_cell"], analysed["count_estimate_debris"]) == ("3", "3", "0")
    assert excluded["count"] == "" and excluded["count_estimate"] == ""  # never a zero for a frame not analysed


def test_a_bundle_without_count_models_adds_no_columns(tmp_path: Path) -> None:
    (analysed, _) = _record(tmp_path, None)
    assert "count_estimate" not in analysed and analysed["count"] == "2"


def test_a_store_from_before_the_column_gains_it_and_keeps_its_experiments(tmp_path: Path) -> None:
    path = tmp_path / "experiments.sqlite"
    with sqlite3.connect(path) as db:  # the frames table as stores before count_estimate made it
        db.execute("CREATE TABLE frames (experiment TEXT NOT NULL, ts_us INTEGER NOT NULL, frame_index INTEGER, "
                   "analysed TEXT NOT NULL, focus REAL, saturated REAL, dark REAL, count INTEGER, counts TEXT, model TEXT, "
                   "model_version TEXT, um_per_pixel REAL, fov_mm2 REAL, image TEXT, calibration TEXT, "
                   "PRIMARY KEY (experiment, ts_us))")
        db.execute("INSERT INTO frames (experiment, ts_us, analysed, count, counts) VALUES ('old', 5, 'ok', 4, '{\"cell\":4}')")
    store = ExperimentStore(path)
    (frame,) = store.frames("old")
    assert (frame["count"], frame["counts"], frame["estimates"]) == (4, {"cell": 4}, None)
