"""Tracking controls of the live page: line, flow settings, id toggle, reset; bad input is a 400
that changes nothing."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from device.sources.synthetic import CLASSES
from device.tracking.settings import TrackingSettings
from device.tracking.stage import TrackingStage
from tests.device.panel.conftest import Auth
from tests.device.panel.helpers import SyntheticRuntime


@pytest.fixture
def stage(runtime: SyntheticRuntime) -> TrackingStage:
    """A real stage on the runtime, fed a few synthetic frames (320x240) so it knows the frame size."""
    stage = TrackingStage(TrackingSettings(min_frames=2), None)
    for i in range(4):
        frame = runtime.scope.read()
        stage.update(frame.truth, i / 10, frame.image.shape[:2], "model", CLASSES, {})
    runtime.stage = stage
    return stage


def test_tracking_needs_login(client: FlaskClient, stage: TrackingStage) -> None:
    assert client.get("/panel/api/tracking").status_code in (302, 401)
    assert client.post("/panel/api/tracking/line", json={"line": [10, 10, 100, 100]}).status_code in (302, 400, 401, 403)
    assert stage.live()["line"] is None


def test_set_and_clear_the_line(auth: Auth, client: FlaskClient, stage: TrackingStage) -> None:
    auth.login()
    response = auth.json("POST", "/panel/api/tracking/line", {"line": [160, 0, 160, 240]})
    assert response.status_code == 200 and response.get_json() == {"line": [160.0, 0.0, 160.0, 240.0]}  # type: ignore[attr-defined]
    state = client.get("/panel/api/tracking").get_json()
    assert state["line"] == [160.0, 0.0, 160.0, 240.0] and state["crossings"]["cell"] == {"forward": 0, "reverse": 0}
    assert state["unique_total"] > 0
    assert auth.json("POST", "/panel/api/tracking/line", {"line": None}).get_json() == {"line": None}  # type: ignore[attr-defined]
    assert stage.live()["line"] is None


@pytest.mark.parametrize(("body", "message"), [
    ({"line": [50, 50, 50, 50]}, "zero length"),
    ({"line": [10, 10, 400, 10]}, "outside the 320x240 frame"),
    ({"line": "across"}, "four numbers"),
    ({"points": [1, 2]}, "send {\"line\""),
    ([1, 2, 3, 4], "JSON object"),
])
def test_bad_lines_are_400_and_keep_the_old_line(auth: Auth, stage: TrackingStage, body: object, message: str) -> None:
    auth.login()
    auth.json("POST", "/panel/api/tracking/line", {"line": [160, 0, 160, 240]})
    response = auth.json("POST", "/panel/api/tracking/line", body)
    assert response.status_code == 400 and message in response.get_json()["error"]  # type: ignore[attr-defined]
    assert stage.live()["line"] == [160.0, 0.0, 160.0, 240.0]


@pytest.mark.parametrize(("body", "message"), [
    ({"flow_rate_ul_min": -2}, "Flow rate (µL/min) must be at least 0.000001"),
    ({"depth_um": -10}, "Depth (µm) must be at least 0.01"),
    ({"flow_rate_ul_min": "fast"}, "Flow rate (µL/min): 'fast' is not a number"),
    ({"flow_rate_ul_min": "abc"}, "is not a number (write e.g. 1.5 or 1,5)"),
    ({"depth_um": "1.000,5"}, "Depth (µm): '1.000,5' is not a number"),
    ({"show_ids": "yes"}, "Track ids on the stream must be true or false"),
    ({"gate_px": 50}, "cannot change gate_px"),
])
def test_bad_flow_settings_are_400_and_change_nothing(auth: Auth, stage: TrackingStage, body: object, message: str) -> None:
    auth.login()
    assert auth.json("POST", "/panel/api/tracking/settings", {"flow_rate_ul_min": 3.0, "depth_um": 20}).status_code == 200  # type: ignore[attr-defined]
    response = auth.json("POST", "/panel/api/tracking/settings", body)
    assert response.status_code == 400 and message in response.get_json()["error"]  # type: ignore[attr-defined]
    assert "nothing was changed" in response.get_json()["error"]  # type: ignore[attr-defined]
    assert stage.settings.flow_rate_ul_min == 3.0 and stage.settings.depth_um == 20.0


def test_toggle_ids_and_reset(auth: Auth, client: FlaskClient, stage: TrackingStage) -> None:
    auth.login()
    assert auth.json("POST", "/panel/api/tracking/settings", {"show_ids": False}).get_json()["show_ids"] is False  # type: ignore[attr-defined]
    assert client.get("/panel/api/tracking").get_json()["show_ids"] is False
    assert auth.json("POST", "/panel/api/tracking/reset", {}).get_json()["unique_total"] == 0  # type: ignore[attr-defined]


def test_device_without_tracking_says_so(auth: Auth, client: FlaskClient) -> None:
    auth.login()
    response = client.get("/panel/api/tracking")
    assert response.status_code == 409 and "tracking.enabled" in response.get_json()["error"]


@pytest.mark.parametrize(("typed", "stored"), [("1,5", 1.5), (" 2.5 ", 2.5), ("0,25", 0.25), ("", None), (3, 3.0)])
def test_flow_rate_typed_with_a_decimal_comma_is_stored(auth: Auth, client: FlaskClient, stage: TrackingStage,
                                                       typed: object, stored: float | None) -> None:
    """What the Apply button sends: the text of the box; the answer and the live state carry the value in force."""
    auth.login()
    response = auth.json("POST", "/panel/api/tracking/settings", {"flow_rate_ul_min": typed, "depth_um": "20"})
    assert response.status_code == 200 and response.get_json()["flow_rate_ul_min"] == stored  # type: ignore[attr-defined]
    assert stage.settings.flow_rate_ul_min == stored and stage.settings.depth_um == 20.0
    state = client.get("/panel/api/tracking").get_json()
    assert state["flow_rate_ul_min"] == stored and state["depth_um"] == 20.0


def test_no_internal_field_names_in_the_messages(auth: Auth, stage: TrackingStage) -> None:
    auth.login()
    error = auth.json("POST", "/panel/api/tracking/settings", {"flow_rate_ul_min": 0, "depth_um": 0}).get_json()["error"]  # type: ignore[attr-defined]
    assert "flow_rate_ul_min" not in error and "depth_um" not in error and "Input should" not in error
    assert "Flow rate (µL/min) must be at least" in error and "Depth (µm) must be at least" in error


def test_reset_counts_clears_the_concentrations(auth: Auth, client: FlaskClient, runtime: SyntheticRuntime) -> None:
    """A chamber concentration (depth set, calibrated) is gone right after Reset counts; it comes back
    once the tracks in view are confirmed anew."""
    stage = TrackingStage(TrackingSettings(min_frames=2, depth_um=20.0), um_per_pixel=1.0)
    runtime.stage = stage

    def frames(start: int, n: int) -> None:
        for i in range(start, start + n):
            frame = runtime.scope.read()
            stage.update(frame.truth, i / 10, frame.image.shape[:2], "model", CLASSES, {})

    frames(0, 4)
    auth.login()
    assert client.get("/panel/api/tracking").get_json()["concentration"]["cell"]["per_ul"] > 0
    after = auth.json("POST", "/panel/api/tracking/reset", {}).get_json()  # type: ignore[attr-defined]
    assert "concentration" not in after and after["unique_total"] == 0
    assert "concentration" not in client.get("/panel/api/tracking").get_json()
    frames(4, 2)
    assert client.get("/panel/api/tracking").get_json()["concentration"]["cell"]["per_ul"] > 0
