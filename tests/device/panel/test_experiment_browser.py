"""A scientist's experiment in a real browser (Debian's Chromium) against the real `python -m
device run` with the demo model on the synthetic microscope (demo settings plus a focus drift):
calibrate on a grabbed frame, start an experiment, record, stop, download both CSVs and the report.
The CSV counts equal the device's outbox and InfluxDB for the same frames; the report opens and
shows its plots (screenshots under artifacts/screenshots/).

Recording lasts RECORD_S = 20 s rather than 30: at the demo model's 3-6 frames/s here that is
60-120 frames, over two and more focus-drift cycles of 24 frames, so both analysed and excluded
frames are in every run; longer only makes the suite slower."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import Influx, create_database, drop_database, stop_process
from tests.device.panel.browser_support import ARGS, CHROMIUM, PASSWORD, free_port, until

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[3]
RECORD_S = 20.0
SOURCE = "synthetic://?seed=1&density=60&width=640&height=480&fps=8&focus_drift=5&focus_period=24"


@pytest.fixture(scope="module")
def influx_db() -> Iterator[Influx]:
    database = create_database("test_experiment")
    yield database
    drop_database(database)


@pytest.fixture(scope="module")
def scope(tmp_path_factory: pytest.TempPathFactory, influx_db: Influx) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("scope")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPEHIVE_") or k.startswith("SCOPEHIVE_TEST_")}
    env.update(SCOPEHIVE_PANEL_PASSWORD=PASSWORD, SCOPEHIVE_DEVICE_NAME="scope-exp", SCOPEHIVE_PROJECT="blood")
    cmd = [sys.executable, "-m", "device", "run", "--source", SOURCE, "--model", str(ROOT / "device" / "models" / "demo"),
           "--data-dir", str(data), "--port", str(port), "--influx-url", influx_db.url, "--influx-bucket", influx_db.database]
    log = (data / "device.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the device did not start: {(data / 'device.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url, data
    finally:
        stop_process(proc, timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


def _download(page: Any, selector: str, target: Path) -> Path:
    with page.expect_download() as download:
        page.click(selector)
    download.value.save_as(target)
    return target


def _calibrate(page: Any) -> float:
    """Grab a frame, drag a line over it, type a length that makes 0.65 µm/px; returns the µm/px saved."""
    page.click("#grab-btn")
    until(page, "window.calibrationReady === true", 30)
    box = page.locator("#calib-canvas").bounding_box()
    x0, y = box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move(x0 + box["width"] * 0.3, y, steps=5)
    page.mouse.move(x0 + box["width"] * 0.6, y, steps=5)
    page.mouse.up()
    pixels = float(page.inner_text("#calib-line").split()[1])
    page.fill("#calib-length", f"{pixels * 0.65:.3f}")
    page.fill("#calib-name", "10x demo")
    page.fill("#calib-form input[name=objective]", "10x / 0.25")
    page.click("#calib-form button")
    page.wait_for_selector("#page-message.success")
    assert "Profile 10x demo saved" in page.inner_text("#page-message")
    return float(page.inner_text("#page-message").split("saved: ")[1].split()[0])


def _outbox_frames(data: Path, experiment: str) -> dict[int, dict[str, Any]]:
    with sqlite3.connect(data / "outbox.sqlite") as db:
        rows = db.execute("SELECT ts_us, tags, fields FROM points WHERE measurement = 'frame'").fetchall()
    return {ts: {**json.loads(f), **json.loads(t)} for ts, t, f in rows if json.loads(t).get("experiment") == experiment}


def _influx_frames(influx: Influx, experiment: str, expected: int) -> dict[int, dict[str, Any]]:
    """The experiment's frame points in InfluxDB, once the sender has delivered all `expected`."""
    deadline = time.monotonic() + 60
    while True:
        rows = influx.rows(f"SELECT \"count\", \"frame_index\", \"analysed\" FROM \"frame\" WHERE \"experiment\" = '{experiment}'")
        if len(rows) >= expected or time.monotonic() > deadline:
            return {int(str(r["time"])) // 1000: r for r in rows}
        time.sleep(1)


def test_calibrate_record_stop_download(scope: tuple[str, Path], browser: Any, influx_db: Influx, artifacts_dir: Path,
                                        tmp_path: Path) -> None:
    url, data = scope
    shots = artifacts_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    violations: list[str] = []  # the Experiments and Live pages work under the panel's CSP
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto(f"{url}/panel/login")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{url}/panel/experiments")
    assert _calibrate(page) == pytest.approx(0.65, rel=1e-3)
    until(page, "document.querySelectorAll('#profile-select option').length === 2", 30)

    page.fill("#start-form input[name=name]", "Blood smear 7")
    page.fill("#start-form input[name=sample]", "slide B-7")
    page.fill("#start-form input[name=operator]", "A. Scientist")
    page.fill("#start-form input[name=objective]", "10x")
    page.select_option("#profile-select", "10x demo")
    page.click("#start-form button")
    page.wait_for_selector("#stop-btn:not([hidden])")
    experiment = page.inner_text("#page-message").split("(")[-1].rstrip(")")
    started = time.monotonic()
    page.goto(f"{url}/panel/live")
    until(page, "document.getElementById('live-experiment').textContent.includes('Blood smear 7')", 30)
    until(page, "document.getElementById('stream').naturalWidth > 0", 30)
    time.sleep(max(0.0, min(8.0, RECORD_S - (time.monotonic() - started))))
    page.screenshot(path=str(shots / "experiment-live.png"), full_page=True)
    page.goto(f"{url}/panel/experiments")
    until(page, "document.getElementById('elapsed') !== null", 30)
    time.sleep(max(0.0, RECORD_S - (time.monotonic() - started)))
    page.click("#stop-btn")
    page.wait_for_selector("#start-form:not([hidden])")
    assert "stopped after" in page.inner_text("#page-message")
    page.screenshot(path=str(shots / "experiments.png"), full_page=True)

    row = f".experiment-row[data-id='{experiment}']"
    frames_csv = _download(page, f"{row} a:text('frames CSV')", tmp_path / "frames.csv")
    objects_csv = _download(page, f"{row} a:text('objects CSV')", tmp_path / "objects.csv")
    report = _download(page, f"{row} a:text('report')", tmp_path / "report.html")
    frames = list(csv.DictReader(io.StringIO(frames_csv.read_text())))
    objects = list(csv.DictReader(io.StringIO(objects_csv.read_text())))
    analysed = [f for f in frames if f["analysed"] == "ok"]
    excluded = [f for f in frames if f["analysed"] != "ok"]
    assert len(analysed) >= 10 and excluded, (len(analysed), len(excluded))
    assert all(f["count"] == "" and f["count_cell"] == "" for f in excluded)  # excluded, never zeros
    assert sum(int(f["count"]) for f in analysed) == len(objects)
    assert {f["um_per_pixel"] for f in frames} == {"0.65"} or all(abs(float(f["um_per_pixel"]) - 0.65) < 1e-3 for f in frames)

    outbox = _outbox_frames(data, experiment)
    influx = _influx_frames(influx_db, experiment, len(frames))
    by_time = {int(f["ts_us"]): f for f in frames}
    assert set(by_time) == set(outbox) == set(influx)
    for ts, row_ in by_time.items():
        expected = int(row_["count"]) if row_["count"] else None
        assert outbox[ts].get("count") == expected and influx[ts]["count"] == expected
        assert outbox[ts]["analysed"] == influx[ts]["analysed"] == row_["analysed"]
    (objects_in_influx,) = influx_db.rows(f"SELECT count(\"size_um\") FROM \"object\" WHERE \"experiment\" = '{experiment}'")
    assert objects_in_influx["count"] == len(objects)

    page.goto(f"{url}/panel/api/experiments/{experiment}/report.html?view=1")
    assert page.locator("svg.plot").count() >= 3
    assert "Blood smear 7" in page.inner_text("h1") and "10x demo" in page.inner_text("body")
    page.screenshot(path=str(shots / "experiment-report.png"), full_page=True)
    html = report.read_text()
    assert "<script" not in html and html.count("<svg") >= 3 and "sha256" in html
    context.close()
    assert violations == []
