"""Hostile JSON at the panel's API: nested 100k deep, a 400-digit coordinate, Infinity and denormal
flow rates, "yes" for a boolean, "0.5" for a number, an Arabic-Indic digit for `every`. Each is a
400 (or a refusal on the page) that says why, and nothing changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from device.experiments.recorder import ExperimentRecorder
from device.experiments.store import ExperimentStore
from device.sources.synthetic import CLASSES
from device.tracking.settings import TrackingSettings
from device.tracking.stage import TrackingStage
from tests.device.panel.conftest import PASSWORD, Auth, make_app
from tests.device.panel.helpers import SyntheticRuntime

DEEP_LIST = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a": ' * 100_000 + "1" + "}" * 100_000


class HostileRuntime(SyntheticRuntime):
    """A runtime with a tracking stage that knows its 320x240 frame, an experiment store, and a
    record of models added beside."""

    def __init__(self, cache_dir: Path, data_dir: Path) -> None:
        super().__init__(cache_dir)
        self.line_stage = TrackingStage(TrackingSettings(min_frames=2), None)
        for i in range(4):
            frame = self.scope.read()
            self.line_stage.update(frame.truth, i / 10, frame.image.shape[:2], "model", CLASSES, {})
        self.experiment_store = ExperimentStore(data_dir / "experiments.sqlite")
        self.stage = self.line_stage  # what the panel reaches through runtime.tracking()
        self.recorder = ExperimentRecorder(self.experiment_store, "scope-1", "lab", lambda *event: None)
        self.added: list[tuple[str, int]] = []

    def add_model(self, name: str, bundle_path: Path, every: int = 1, overlay: bool = True) -> Any:
        self.added.append((name, every))
        raise AssertionError("a refused request must not reach the device")


@pytest.fixture
def device(tmp_path: Path) -> HostileRuntime:
    return HostileRuntime(tmp_path / "cache", tmp_path / "data")


@pytest.fixture
def app(tmp_path: Path, device: HostileRuntime, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
    return make_app(tmp_path / "data", device)


@pytest.fixture
def auth(client: FlaskClient, device: HostileRuntime) -> Auth:
    helper = Auth(client)
    helper.login()
    assert helper.json("POST", "/panel/api/tracking/line", {"line": [160, 0, 160, 240]}).status_code == 200  # type: ignore[attr-defined]
    assert helper.json("POST", "/panel/api/tracking/settings", {"flow_rate_ul_min": 3.0, "depth_um": 20}).status_code == 200  # type: ignore[attr-defined]
    return helper


def _raw(auth: Auth, method: str, url: str, text: str) -> Any:
    return auth.client.open(url, method=method, data=text, content_type="application/json",
                            headers={"X-CSRF-Token": auth.token()})


def _state(device: HostileRuntime) -> tuple[Any, ...]:
    store = device.experiment_store
    return (device.line_stage.settings.model_dump(), device.line_stage.live()["line"], [e.model_dump() for e in store.recent()],
            [p.model_dump() for p in store.profiles()], list(device.added))


@pytest.mark.parametrize("url", ["/panel/api/tracking/settings", "/panel/api/tracking/line", "/panel/api/experiments/start",
                                 "/panel/api/calibration/profiles"])
@pytest.mark.parametrize("body", [DEEP_LIST, DEEP_OBJECT], ids=["list", "object"])
def test_json_nested_100k_deep_is_400_not_500(auth: Auth, device: HostileRuntime, url: str, body: str) -> None:
    before = _state(device)
    response = _raw(auth, "POST", url, body)
    assert response.status_code == 400 and "nested too deeply" in response.get_json()["error"]
    assert _state(device) == before


def test_an_annotation_nested_100k_deep_is_400(app: Flask, auth: Auth) -> None:
    slug = auth.project()
    image_id = _one_image(auth, slug)
    store = app.extensions["scopehive.panel"].projects
    before = store.annotation(slug, image_id).model_dump()
    response = _raw(auth, "PUT", f"/panel/api/projects/{slug}/images/{image_id}/annotation",
                    '{"revision": 0, "boxes": ' + DEEP_LIST + "}")
    assert response.status_code == 400 and "nested too deeply" in response.get_json()["error"]
    assert store.annotation(slug, image_id).model_dump() == before


@pytest.mark.parametrize("coordinate", ["1" * 400, "-" + "9" * 400])
def test_a_400_digit_coordinate_is_400_and_keeps_the_line(auth: Auth, device: HostileRuntime, coordinate: str) -> None:
    before = _state(device)
    response = _raw(auth, "POST", "/panel/api/tracking/line", '{"line": [10, 10, ' + coordinate + ", 100]}")
    assert response.status_code == 400 and "finite numbers" in response.get_json()["error"]
    assert _state(device) == before and device.line_stage.live()["line"] == [160.0, 0.0, 160.0, 240.0]


@pytest.mark.parametrize(("body", "message"), [
    ('{"flow_rate_ul_min": 1e309}', "too large for a 64-bit float"),
    ('{"flow_rate_ul_min": Infinity}', "'Infinity' is not a JSON value"),
    ('{"depth_um": NaN}', "'NaN' is not a JSON value"),
    ('{"flow_rate_ul_min": 1e-320}', "Flow rate (µL/min) must be at least"),
    ('{"depth_um": 1e-300}', "Depth (µm) must be at least"),
    ('{"flow_rate_ul_min": 1e300}', "Flow rate (µL/min) must be at most"),
    ('{"flow_rate_ul_min": ' + "1" * 400 + "}", "Flow rate (µL/min)"),
    ('{"show_ids": "yes"}', "Track ids on the stream must be true or false"),
    ('{"show_ids": 1}', "Track ids on the stream must be true or false"),
    ('{"flow_rate_ul_min": "\u0662.\u0665"}', "is not a number"),  # Arabic-Indic digits: float() would take them
    ('{"flow_rate_ul_min": "nan"}', "is not a number"),
    ('{"flow_rate_ul_min": "infinity"}', "is not a number"),
    ('{"depth_um": true}', "Depth (µm) must be a number"),
])
def test_absurd_or_loose_tracking_settings_are_400_and_change_nothing(auth: Auth, device: HostileRuntime, body: str,
                                                                       message: str) -> None:
    before = _state(device)
    response = _raw(auth, "POST", "/panel/api/tracking/settings", body)
    assert response.status_code == 400 and message in response.get_json()["error"], response.get_data(as_text=True)
    assert _state(device) == before
    assert device.line_stage.settings.flow_rate_ul_min == 3.0 and device.line_stage.settings.show_ids is True


def test_sane_tracking_settings_still_apply(auth: Auth, device: HostileRuntime) -> None:
    answer = auth.json("POST", "/panel/api/tracking/settings", {"flow_rate_ul_min": 0.001, "depth_um": 5, "show_ids": False})
    assert answer.status_code == 200  # type: ignore[attr-defined]
    assert answer.get_json() == {"flow_rate_ul_min": 0.001, "depth_um": 5.0, "show_ids": False}  # type: ignore[attr-defined]


@pytest.mark.parametrize("settings", [{"flow_rate_ul_min": float("inf")}, {"flow_rate_ul_min": 1e-320},
                                      {"depth_um": float("nan")}, {"motile_speed": float("inf")},
                                      {"line": (0.0, 0.0, float("inf"), 5.0)}])
def test_the_config_refuses_them_too(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="finite number|greater than or equal|less than or equal"):
        TrackingSettings(**settings)


@pytest.mark.parametrize(("line", "message"), [([10, 10, "100", 100], "four numbers"), ([True, 10, 100, 100], "four numbers")])
def test_loose_line_coordinates_are_400(auth: Auth, device: HostileRuntime, line: list[Any], message: str) -> None:
    before = _state(device)
    response = auth.json("POST", "/panel/api/tracking/line", {"line": line})
    assert response.status_code == 400 and message in response.get_json()["error"]  # type: ignore[attr-defined]
    assert _state(device) == before


@pytest.mark.parametrize(("url", "body", "message"), [
    ("/panel/api/calibration/profiles", {"name": "p", "um_per_pixel": "0.5"}, "µm per pixel must be a number"),
    ("/panel/api/calibration/profiles", {"name": "p", "um_per_pixel": True}, "µm per pixel must be a number"),
    ("/panel/api/calibration/profiles", {"name": "p", "line": {"x1": "0", "y1": 0, "x2": 90, "y2": 0, "length_um": 5}},
     "X1 must be a number"),
    ("/panel/api/experiments/start", {"name": 12}, "Name must be text"),
    ("/panel/api/experiments/start", {"name": "smear\u202egnp.exe"}, "bidirectional control character U+202E"),
    ("/panel/api/experiments/start", {"name": "smear", "sample": "S\u2066-1"}, "bidirectional control character U+2066"),
    ("/panel/api/experiments/start", {"name": "smear", "operator": "ann\u202d"}, "bidirectional control character U+202D"),
])
def test_loose_experiment_bodies_are_400(auth: Auth, device: HostileRuntime, url: str, body: Any, message: str) -> None:
    before = _state(device)
    response = auth.json("POST", url, body)
    assert response.status_code == 400 and message in response.get_json()["error"]  # type: ignore[attr-defined]
    assert _state(device) == before


@pytest.mark.parametrize(("body", "message"), [
    ({"revision": True, "boxes": []}, "'revision' must be a whole number"),
    ({"revision": 0, "boxes": [], "negative": "no"}, "'negative' must be true or false"),
    ({"revision": 0, "boxes": [], "negative": 0}, "'negative' must be true or false"),
])
def test_loose_annotation_fields_are_400_and_save_nothing(app: Flask, auth: Auth, client: FlaskClient, body: Any,
                                                          message: str) -> None:
    slug = auth.project()
    store = app.extensions["scopehive.panel"].projects
    image_id = _one_image(auth, slug)
    url = f"/panel/api/projects/{slug}/images/{image_id}/annotation"
    before = store.annotation(slug, image_id).model_dump()
    response = auth.json("PUT", url, body)
    assert response.status_code == 400 and message in response.get_json()["error"]  # type: ignore[attr-defined]
    assert store.annotation(slug, image_id).model_dump() == before


def _one_image(auth: Auth, slug: str) -> str:
    """A captured frame of the synthetic microscope in the project."""
    response = auth.json("POST", f"/panel/api/projects/{slug}/capture", None)
    return str(response.get_json()["image"]["id"])  # type: ignore[attr-defined]


@pytest.mark.parametrize("every", ["٣", "３", "²", "1e1", "+3"])
def test_every_takes_ascii_digits_only(auth: Auth, device: HostileRuntime, every: str) -> None:
    auth.project()
    page = auth.post("/panel/models/some-model/beside", data={"every": every}, follow_redirects=True)
    text = page.get_data(as_text=True)  # type: ignore[attr-defined]
    assert "must be a whole number of frames from 1 to 1000" in text and device.added == []
