"""The tracking stage: points, model switches, live settings and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from device.tracking.crossing import LineError
from device.tracking.settings import TrackingSettings
from device.tracking.stage import TrackingStage
from tests.conftest import dets

CLASSES = ("cell", "crystal")
SHAPE = (100, 200)


def _walk(stage: TrackingStage, model: object, frames: range, tags: dict[str, str]) -> list:
    """One cell walking right at 4 px/frame and a still crystal; 10 frames per second."""
    points = []
    for i in frames:
        found = dets([[4 * i, 40, 4 * i + 10, 50], [150, 70, 160, 80]], classes=[0, 1])
        points += stage.update(found, i / 10, SHAPE, model, CLASSES, tags)[1]
    return points


def test_track_points_when_tracks_end_and_a_model_switch_ends_them_all() -> None:
    stage = TrackingStage(TrackingSettings(min_frames=3, interval_s=100), um_per_pixel=0.5)
    assert _walk(stage, "model-a", range(10), {"model": "a"}) == []
    points = _walk(stage, "model-b", range(10, 12), {"model": "b"})
    tracks = [p for p in points if p.measurement == "track"]
    assert sorted(p.tags["class"] for p in tracks) == ["cell", "crystal"]
    assert all(p.tags["model"] == "a" for p in tracks), "a track ended by the switch belongs to the old model"
    cell = next(p.fields for p in tracks if p.tags["class"] == "cell")
    assert cell["frames"] == 10 and cell["duration_s"] == pytest.approx(0.9)
    assert cell["speed_px_s"] == pytest.approx(40.0, rel=0.02) and cell["speed_um_s"] == pytest.approx(20.0, rel=0.02)
    assert cell["straightness"] == pytest.approx(1.0, abs=0.01) and cell["start_x"] == pytest.approx(5.0)
    assert len({p.ts_us for p in tracks}) == 2, "tracks ending together keep distinct timestamps"
    summaries = [p for p in points if p.measurement == "track_summary"]
    assert {p.tags["model"] for p in summaries} == {"a"} and len(summaries) == 2
    assert stage.live()["unique_total"] == 0 and stage.live()["open_tracks"] == 2  # the new model starts afresh


def test_periodic_points_carry_unique_counts_and_crossings() -> None:
    stage = TrackingStage(TrackingSettings(min_frames=3, interval_s=1.0, line=(20, 0, 20, 100)), None)
    points = _walk(stage, "m", range(12), {"model": "m"})
    crossing = {(p.tags["class"], p.tags["direction"]): p.fields for p in points if p.measurement == "crossing"}
    assert crossing[("cell", "forward")] == {"count": 1, "total": 1}
    assert crossing[("crystal", "reverse")] == {"count": 0, "total": 0}
    summary = {p.tags["class"]: p.fields for p in points if p.measurement == "track_summary"}
    assert summary["cell"]["unique"] == 1 and summary["crystal"]["open_tracks"] == 1
    assert stage.heartbeat_fields() == {"unique_count": 2, "open_tracks": 2}
    assert stage.live()["crossings"]["cell"] == {"forward": 1, "reverse": 0}


@pytest.mark.parametrize("coords", [[10, 10, 10, 10], [10, 10, 500, 10], [1, 2, 3]])
def test_a_bad_line_changes_nothing(coords: list[float]) -> None:
    stage = TrackingStage(TrackingSettings(), None)
    _walk(stage, "m", range(2), {})
    assert stage.set_line([20, 0, 20, 100]) == [20.0, 0.0, 20.0, 100.0]
    with pytest.raises(LineError):
        stage.set_line(coords)
    assert stage.live()["line"] == [20.0, 0.0, 20.0, 100.0]


@pytest.mark.parametrize("changes", [{"flow_rate_ul_min": -1.0}, {"depth_um": -5}, {"depth_um": 0}, {"gate_px": 3}])
def test_bad_flow_settings_change_nothing(changes: dict[str, float]) -> None:
    stage = TrackingStage(TrackingSettings(flow_rate_ul_min=2.0, depth_um=10.0), None)
    with pytest.raises((ValidationError, ValueError)):
        stage.configure(changes)
    assert stage.settings.flow_rate_ul_min == 2.0 and stage.settings.depth_um == 10.0


def test_configured_line_outside_the_frame_is_reported() -> None:
    stage = TrackingStage(TrackingSettings(line=(0, 0, 400, 0)), None)
    with pytest.raises(LineError, match="outside the 200x100 frame"):
        _walk(stage, "m", range(1), {})


def test_ids_hidden_when_toggled_off() -> None:
    stage = TrackingStage(TrackingSettings(), None)
    overlay, _ = stage.update(dets([[0, 0, 5, 5]]), 0.0, SHAPE, "m", CLASSES, {})
    assert overlay.ids is not None and overlay.ids.tolist() == [1]
    stage.configure({"show_ids": False})
    overlay, _ = stage.update(dets([[0, 0, 5, 5]]), 0.1, SHAPE, "m", CLASSES, {})
    assert overlay.ids is None


def test_reset_counts_starts_unique_counts_afresh() -> None:
    stage = TrackingStage(TrackingSettings(min_frames=2), None)
    _walk(stage, "m", range(4), {})
    assert stage.live()["unique_total"] == 2
    stage.reset_counts()
    _walk(stage, "m", range(4, 6), {})
    assert stage.live()["unique_total"] == 0 and np.all(stage.unique == 0)


@pytest.mark.parametrize(("text", "expected"), [("640,0,640,960", (640.0, 0.0, 640.0, 960.0)), ("[1, 2, 3, 4]", (1.0, 2.0, 3.0, 4.0)), ("", None)])
def test_line_from_an_environment_variable(text: str, expected: tuple[float, ...] | None) -> None:
    from device.config import load_config

    assert load_config(environ={"SCOPEHIVE_TRACKING__LINE": text}).tracking.line == expected


@pytest.mark.parametrize("variable", ["SCOPEHIVE_TRACKING__FLOW_RATE_UL_MIN", "SCOPEHIVE_TRACKING__DEPTH_UM"])
def test_negative_flow_or_depth_in_the_config_is_an_error_that_names_it(variable: str) -> None:
    from device.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=variable):
        load_config(environ={variable: "-3"})


def test_an_experiment_starting_and_stopping_ends_open_tracks() -> None:
    stage = TrackingStage(TrackingSettings(min_frames=3, interval_s=100), None)
    _walk(stage, "m", range(5), {"model": "m"})
    started = _walk(stage, "m", range(5, 10), {"model": "m", "experiment": "e1"})
    assert {p.tags.get("experiment") for p in started if p.measurement == "track"} == {None}
    assert stage.live()["unique_total"] == 2  # the experiment counts what it saw itself
    stopped = _walk(stage, "m", range(10, 11), {"model": "m"})
    assert {p.tags.get("experiment") for p in stopped if p.measurement == "track"} == {"e1"}


def test_chamber_concentration_from_depth_and_calibration() -> None:
    """No flow rate: objects in view over the imaged volume (200x100 px at 2 µm/px, 50 µm deep)."""
    stage = TrackingStage(TrackingSettings(depth_um=50.0, interval_s=0.5), um_per_pixel=2.0)
    points = _walk(stage, "m", range(8), {"model": "m"})
    conc = [p for p in points if p.measurement == "concentration" and p.tags["class"] == "cell"]
    volume_ul = 200 * 100 * 2.0**2 * 50.0 / 1e9
    assert conc and conc[-1].tags["mode"] == "chamber" and conc[-1].fields["count"] == 1
    assert conc[-1].fields["per_ul"] == pytest.approx(1 / volume_ul)
    assert conc[-1].fields["per_ul_low"] < conc[-1].fields["per_ul"] < conc[-1].fields["per_ul_high"]
