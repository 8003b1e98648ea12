"""The experiment page's QuPath download: /panel/api/experiments/<id>/objects.geojson, one file's
objects with ?file=, behind the login like every other download."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from device.detections import Detections
from device.experiments.quality import FrameQuality
from device.experiments.recorder import FrameContext
from device.experiments.store import ExperimentRequest
from tests.device.panel.conftest import PASSWORD, Auth, make_app
from tests.device.panel.test_experiments import ExperimentRuntime


@pytest.fixture
def device(tmp_path: Path) -> ExperimentRuntime:
    return ExperimentRuntime(tmp_path / "cache", tmp_path / "data")


@pytest.fixture
def app(tmp_path: Path, device: ExperimentRuntime, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
    return make_app(tmp_path / "data", device)


def test_objects_geojson_download_per_file(client: FlaskClient, device: ExperimentRuntime) -> None:
    recorder = device.recorder
    experiment = recorder.start(ExperimentRequest(name="qupath"), {})
    boxes = Detections.from_lists([[0, 0, 20, 20], [5, 5, 15, 45]], [0.9, 0.8], [0, 1])
    for n, name in enumerate(("a.ome.tif", "b.ome.tif")):
        context = FrameContext(("cell", "debris"), "m", "1", 0.5, (200, 100, 3), {"file": name, "plane_t": n},
                               "file metadata (OME PhysicalSizeX/Y of " + name + ")")
        recorder.record(1_000_000 * (n + 1), n, FrameQuality(40.0, 0.0, 0.0, "ok"), "ok", boxes, context)
    recorder.stop()
    url = f"/panel/api/experiments/{experiment.id}/objects.geojson"
    assert client.get(url).status_code in (302, 401)  # not without a login
    Auth(client).login()
    whole = client.get(url)
    assert whole.status_code == 200 and whole.mimetype == "application/geo+json"
    assert "attachment" in whole.headers["Content-Disposition"]
    assert len(json.loads(whole.get_data(as_text=True))["features"]) == 4
    one = json.loads(client.get(url + "?file=b.ome.tif").get_data(as_text=True))["features"]
    assert [(f["properties"]["file"], f["properties"]["classification"]["name"]) for f in one] == [
        ("b.ome.tif", "cell"), ("b.ome.tif", "debris")]
    assert one[0]["properties"]["measurements"]["width_um"] == pytest.approx(10.0)
    assert client.get("/panel/api/experiments/nope/objects.geojson").status_code == 404
