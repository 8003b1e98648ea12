"""The experiments HTTP API: start/stop, calibration, summary and downloads; every bad request is
a 400 with a message and leaves the store as it was."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from device.config import DeviceConfig
from device.detections import Detections
from device.experiments.quality import FrameQuality
from device.experiments.recorder import ExperimentRecorder, FrameContext
from device.experiments.store import ExperimentStore
from tests.device.panel.conftest import PASSWORD, Auth, make_app
from tests.device.panel.helpers import SyntheticRuntime


class ExperimentRuntime(SyntheticRuntime):
    """The panel's test runtime plus a real experiment store and recorder."""

    def __init__(self, cache_dir: Path, data_dir: Path) -> None:
        super().__init__(cache_dir)
        self.config = DeviceConfig(data_dir=data_dir)
        self.detector = None
        self.events: list[tuple[str, dict[str, str]]] = []
        self.recorder = ExperimentRecorder(ExperimentStore(data_dir / "experiments.sqlite"), "scope-1", "lab",
                                              lambda kind, message, tags, when: self.events.append((kind, tags)))


@pytest.fixture
def device(tmp_path: Path) -> ExperimentRuntime:
    return ExperimentRuntime(tmp_path / "cache", tmp_path / "data")


@pytest.fixture
def app(tmp_path: Path, device: ExperimentRuntime, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
    return make_app(tmp_path / "data", device)


@pytest.fixture
def auth(client: FlaskClient) -> Auth:
    helper = Auth(client)
    helper.login()
    return helper


def _state(device: ExperimentRuntime) -> tuple[Any, ...]:
    store = device.recorder.store
    return ([e.model_dump() for e in store.recent()], [p.model_dump() for p in store.profiles()], len(device.events))


def test_calibrate_start_record_stop_download(auth: Auth, device: ExperimentRuntime, client: FlaskClient) -> None:
    line = {"x1": 10, "y1": 10, "x2": 310, "y2": 410, "length_um": 250}  # 500 px
    made = auth.json("POST", "/panel/api/calibration/profiles", {"name": "40x", "objective": "40x/0.65", "line": line})
    assert made.status_code == 201 and made.get_json()["um_per_pixel"] == pytest.approx(0.5)  # type: ignore[attr-defined]
    started = auth.json("POST", "/panel/api/experiments/start", {"name": "Blood smear 3", "sample": "S-1", "profile": "40x"})
    assert started.status_code == 201  # type: ignore[attr-defined]
    experiment = started.get_json()  # type: ignore[attr-defined]
    assert experiment["running"] and experiment["calibration"]["um_per_pixel"] == 0.5
    recorder = device.recorder
    context = FrameContext(("cell", "debris"), "m", "1", 0.5, (200, 100, 3))
    boxes = Detections.from_lists([[0, 0, 20, 20], [5, 5, 15, 45], [50, 50, 54, 54]], [0.9, 0.8, 0.7], [0, 0, 1])
    sharp, blurred = FrameQuality(40.0, 0.0, 0.0, "ok"), FrameQuality(5.0, 0.0, 0.0, "out_of_focus")
    points = recorder.record(1_000_000, 1, sharp, "ok", boxes, context)
    assert [p.tags["class"] for p in points] == ["cell", "cell", "debris"] and points[0].tags["experiment"] == experiment["id"]
    assert recorder.record(2_000_000, 2, blurred, "out_of_focus", None, context) == []
    recorder.record(3_000_000, 3, sharp, "ok", Detections.empty(), context)
    stopped = auth.json("POST", "/panel/api/experiments/stop", {})
    assert stopped.status_code == 200 and not stopped.get_json()["running"]  # type: ignore[attr-defined]
    assert [k for k, _ in device.events] == ["experiment_started", "experiment_stopped"]

    summary = client.get(f"/panel/api/experiments/{experiment['id']}/summary").get_json()
    assert summary["frames"] == {"total": 3, "analysed": 2, "excluded": 1, "excluded_by_reason": {"out_of_focus": 1},
                                 "camera": 3, "dropped": 0}
    cell = summary["classes"]["cell"]
    assert cell["count"]["mean"] == 1.0 and cell["count"]["density_per_mm2"] == pytest.approx(1.0 / (200 * 100 * 0.25 / 1e6))
    assert cell["size"]["median"] == pytest.approx((10 + np.sqrt(10 * 40) * 0.5) / 2)  # sizes 10 and 10 µm
    frames = list(csv.DictReader(io.StringIO(client.get(f"/panel/api/experiments/{experiment['id']}/frames.csv").get_data(as_text=True))))
    assert [(f["analysed"], f["count"], f["count_cell"]) for f in frames] == [("ok", "3", "2"), ("out_of_focus", "", ""), ("ok", "0", "0")]
    objects = list(csv.DictReader(io.StringIO(client.get(f"/panel/api/experiments/{experiment['id']}/objects.csv").get_data(as_text=True))))
    assert [(o["class"], float(o["width_um"])) for o in objects] == [("cell", 10.0), ("cell", 5.0), ("debris", 2.0)]
    report = client.get(f"/panel/api/experiments/{experiment['id']}/report.html")
    html = report.get_data(as_text=True)
    assert "attachment" in report.headers["Content-Disposition"] and html.count("<svg") >= 3 and "Blood smear 3" in html


@pytest.mark.parametrize(("url", "body", "message"), [
    ("/panel/api/experiments/stop", {}, "no experiment is running"),
    ("/panel/api/experiments/start", {"name": "a", "profile": "60x"}, "unknown calibration profile '60x'"),
    ("/panel/api/experiments/start", {"name": "bad\x1bname"}, "control character"),
    ("/panel/api/experiments/start", {"name": ""}, "Name must not be empty"),
    ("/panel/api/experiments/start", {"name": "a", "colour": "red"}, "Colour is not a setting here"),
    ("/panel/api/experiments/start", ["not", "an", "object"], "JSON object"),
    ("/panel/api/calibration/profiles", {"name": "p", "line": {"x1": 3, "y1": 3, "x2": 3, "y2": 3, "length_um": 10}}, "shorter than one pixel"),
    ("/panel/api/calibration/profiles", {"name": "p", "line": {"x1": 0, "y1": 0, "x2": 90, "y2": 0, "length_um": -5}}, "more than 0"),
    ("/panel/api/calibration/profiles", {"name": "p", "um_per_pixel": -0.2}, "µm per pixel must be more than 0"),
    ("/panel/api/calibration/profiles", {"name": "p\x00", "um_per_pixel": 0.2}, "control character"),
])
def test_bad_input_is_400_and_changes_nothing(auth: Auth, device: ExperimentRuntime, url: str, body: Any, message: str) -> None:
    before = _state(device)
    answer = auth.json("POST", url, body)
    assert answer.status_code == 400, answer.get_data(as_text=True)  # type: ignore[attr-defined]
    assert message in answer.get_json()["error"]  # type: ignore[attr-defined]
    assert _state(device) == before


def test_two_at_once_is_400_and_keeps_the_first(auth: Auth, device: ExperimentRuntime) -> None:
    first = auth.json("POST", "/panel/api/experiments/start", {"name": "first"}).get_json()  # type: ignore[attr-defined]
    before = _state(device)
    answer = auth.json("POST", "/panel/api/experiments/start", {"name": "second"})
    assert answer.status_code == 400 and "is running: stop it first" in answer.get_json()["error"]  # type: ignore[attr-defined]
    assert _state(device) == before and device.recorder.active is not None and device.recorder.active.id == first["id"]


def test_api_needs_login_and_csrf(client: FlaskClient, device: ExperimentRuntime) -> None:
    assert client.get("/panel/api/experiments").status_code == 401
    helper = Auth(client)
    helper.login()
    assert client.post("/panel/api/experiments/start", json={"name": "x"}).status_code == 400  # no CSRF token
    assert device.recorder.active is None
    assert client.get("/panel/api/experiments/nope/summary").status_code == 404


def test_report_summary_says_unique_objects_first_and_dropped_frames(auth: Auth, device: ExperimentRuntime, client: FlaskClient) -> None:
    """Two cells sitting still for 40 recorded frames while the camera delivered 79: the report
    leads with unique objects, calls the per-frame sum object-frames, says 39 frames were dropped,
    draws the classes in the stream's colours and writes the quality gates as a sentence."""
    from html.parser import HTMLParser

    from device.colours import default_colour

    started = auth.json("POST", "/panel/api/experiments/start", {"name": "still field"}).get_json()  # type: ignore[attr-defined]
    context = FrameContext(("cell", "debris"), "m", "1", 0.5, (200, 100, 3))
    two_cells = Detections.from_lists([[0, 0, 20, 20], [40, 40, 60, 60]], [0.9, 0.8], [0, 0])
    for k in range(40):  # the loop took every other camera frame
        device.recorder.record(1_000_000 + k * 100_000, 1 + 2 * k, FrameQuality(40.0, 0.0, 0.0, "ok"), "ok", two_cells, context)
    auth.json("POST", "/panel/api/experiments/stop", {})
    html = client.get(f"/panel/api/experiments/{started['id']}/report.html?view=1").get_data(as_text=True)

    class Tables(HTMLParser):
        """Each table's rows as lists of cell texts (tables by id; those without one under '')."""

        def __init__(self) -> None:
            super().__init__()
            self.rows: dict[str, list[list[str]]] = {}
            self.table: str | None = None
            self.cell = False
            self.swatches: list[str | None] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "table":
                self.table = a.get("id") or ""
                self.rows.setdefault(self.table, [])
            elif tag == "tr" and self.table is not None:
                self.rows[self.table].append([])
            elif tag in ("td", "th") and self.table is not None:
                self.rows[self.table][-1].append("")
                self.cell = True
            elif tag == "span" and a.get("class") == "swatch":
                self.swatches.append(a.get("style"))

        def handle_endtag(self, tag: str) -> None:
            if tag == "table":
                self.table = None
            elif tag in ("td", "th"):
                self.cell = False

        def handle_data(self, data: str) -> None:
            if self.cell and self.table is not None:
                self.rows[self.table][-1][-1] += data

    parsed = Tables()
    parsed.feed(html)
    summary = {row[0]: row[1] for row in parsed.rows["summary"]}
    assert list(summary)[0] == "Unique objects (tracked)"
    assert summary["Camera frames"] == "79" and summary["Frames recorded"] == "40"
    assert summary["Dropped camera frames"].startswith("39 (49 %)") and "could not keep up" in summary["Dropped camera frames"]
    head, cell_row = ([c.strip() for c in row] for row in parsed.rows["classes"][:2])
    assert head[1] == "unique objects (tracks)" and head[-1] == "object-frames (boxes summed over frames)"
    assert cell_row[0] == "cell" and cell_row[-1] == "80"  # 2 cells x 40 frames, named for what it is
    assert "blocks" in head[3] and "(8 blocks)" in cell_row[3]  # 40 frames: blocks of 5
    assert parsed.swatches[0] == f"background:{default_colour(0)}"  # the stream's colour of class 0
    gates = {row[0]: row[1] for row in parsed.rows[""] if len(row) == 2}.get("Quality gates (excluded frames)", "")
    assert gates and "{" not in gates and "out of focus below 55 % of the sharp reference" in gates
    assert "not independent" in html and "object-frames" in html.lower()


def test_the_report_has_count_qc_of_its_model(auth: Auth, device: ExperimentRuntime, client: FlaskClient,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Before any spot check the report says "not checked yet"; after two, it states their agreement."""
    from datetime import datetime, timezone

    from device.panel.records import Box, SpotCheck, SpotModel

    slug = auth.project(classes="cell, debris")
    base = device.provenance()
    monkeypatch.setattr(device, "provenance", lambda: {**base, "model": {"name": "cells", "version": "3"}})
    started = auth.json("POST", "/panel/api/experiments/start", {"name": "qc"}).get_json()  # type: ignore[attr-defined]
    auth.json("POST", "/panel/api/experiments/stop", {})
    url = f"/panel/api/experiments/{started['id']}/report.html?view=1"
    html = client.get(url).get_data(as_text=True)
    assert "Count QC (spot checks)" in html and "not checked yet" in html and "100 %" not in html
    store = client.application.extensions["scopehive.panel"].projects
    for model_count, person in ((4, 4), (6, 3)):
        spot = SpotCheck(inbox_id="x", kept_at=datetime.now(timezone.utc),
                         models=[SpotModel(pipeline="main", name="cells", version="3", counts={"cell": model_count})])
        meta = store.add_frame(slug, np.zeros((40, 40), np.uint8), source="inbox", spot_check=spot)
        store.save_annotation(slug, meta.id, 0, [Box(x1=i, y1=0.0, x2=i + 1.0, y2=1.0, class_id=0) for i in range(person)])
    html = client.get(url).get_data(as_text=True)
    row = html.split('id="qc"')[1].split("</table>")[0]
    # d = 0 and 3: mean +1.50, SD 2.1213, limits 1.5 -/+ 4.158; one of two exact
    assert "<td>cell</td><td>2</td><td>5.00</td><td>3.50</td><td>+1.50</td><td>-2.66 to +5.66</td><td>50 %</td>" in row
