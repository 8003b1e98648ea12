"""The experiment store: one running at a time, bad input refused with nothing changed, and a
restart (a new store on the same file) continues the same experiment."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from device.experiments.calibration import CalibrationProfile, ExperimentError, MicrometerLine
from device.experiments.store import ExperimentRequest, ExperimentStore


@pytest.fixture
def store(tmp_path: Path) -> ExperimentStore:
    return ExperimentStore(tmp_path / "experiments.sqlite")


def test_start_stop_and_restart(store: ExperimentStore, tmp_path: Path) -> None:
    store.save_profile(CalibrationProfile(name="40x", um_per_pixel=0.1625, objective="40x / 0.65"))
    started = store.start(ExperimentRequest(name="Blood smear 3", sample="S-12", profile="40x"), "scope-1", "lab", {"model": "demo"})
    assert started.running and started.um_per_pixel == 0.1625 and started.id.endswith("blood-smear-3")
    again = ExperimentStore(tmp_path / "experiments.sqlite")  # the device restarted
    active = again.active()
    assert active is not None and active.id == started.id
    stopped = again.stop()
    assert stopped.id == started.id and stopped.stopped is not None and again.active() is None
    assert [e.id for e in again.recent()] == [started.id]


def test_marks_are_written_once(store: ExperimentStore) -> None:
    experiment = store.start(ExperimentRequest(name="a"), "d", "p", {})
    assert [(e.id, w) for e, w in store.unmarked()] == [(experiment.id, "started")]
    store.set_marked(experiment.id, "started")
    assert store.unmarked() == []
    store.stop()
    assert [w for _, w in store.unmarked()] == ["stopped"]
    store.set_marked(experiment.id, "stopped")
    assert store.unmarked() == []


def test_refusals_change_nothing(store: ExperimentStore) -> None:
    with pytest.raises(ExperimentError, match="no experiment is running"):
        store.stop()
    with pytest.raises(ExperimentError, match="unknown calibration profile 'nope'"):
        store.start(ExperimentRequest(name="x", profile="nope"), "d", "p", {})
    assert store.recent() == []
    first = store.start(ExperimentRequest(name="first"), "d", "p", {})
    with pytest.raises(ExperimentError, match="is running: stop it first"):
        store.start(ExperimentRequest(name="second"), "d", "p", {})
    assert [e.id for e in store.recent()] == [first.id]


@pytest.mark.parametrize("fields", [
    {"name": "bad\x07name"}, {"name": "two\nlines"}, {"name": "   "}, {"name": "ok", "operator": "a\x00b"},
    {"name": "x" * 101}, {"name": "ok", "unknown": 1},
])
def test_bad_requests(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ExperimentRequest.model_validate(fields)


def test_notes_may_have_lines() -> None:
    assert ExperimentRequest(name="a", notes="line 1\nline 2").notes == "line 1\nline 2"


@pytest.mark.parametrize(("line", "um_per_px"), [
    ({"x1": 0, "y1": 0, "x2": 300, "y2": 400, "length_um": 100}, 0.2),
    ({"x1": 10, "y1": 5, "x2": 110, "y2": 5, "length_um": 65}, 0.65),
])
def test_micrometer_line(line: dict[str, float], um_per_px: float) -> None:
    assert MicrometerLine(**line).um_per_pixel() == pytest.approx(um_per_px)


@pytest.mark.parametrize(("line", "message"), [
    ({"x1": 5, "y1": 5, "x2": 5, "y2": 5, "length_um": 10}, "shorter than one pixel"),
    ({"x1": 0, "y1": 0, "x2": 100, "y2": 0, "length_um": -10}, "more than 0"),
    ({"x1": 0, "y1": 0, "x2": 100, "y2": 0, "length_um": 0}, "more than 0"),
])
def test_micrometer_line_refused(line: dict[str, float], message: str) -> None:
    with pytest.raises(ExperimentError, match=message):
        MicrometerLine(**line).um_per_pixel()


@pytest.mark.parametrize("fields", [{"name": "a", "um_per_pixel": -1}, {"name": "a", "um_per_pixel": 0},
                                    {"name": "bad\tname", "um_per_pixel": 1}, {"name": "", "um_per_pixel": 1}])
def test_bad_profiles(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CalibrationProfile.model_validate(fields)
