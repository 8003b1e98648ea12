"""The experiment report as a scientist opens it, in Debian's Chromium against the real `python -m
device run` with the demo model on a camera faster than the CPU: the experiment list says none yet,
then the report's summary leads with unique objects, names the per-frame box sum object-frames,
says how many camera frames were dropped, and draws the classes in the stream's colours. Its
screenshot is docs/images/experiment-report-summary.png (rewritten with SCOPEHIVE_TEST_DOC_SHOTS=1; otherwise
under artifacts/screenshots/, so a test run leaves the committed image alone)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from device.colours import default_colour
from tests.device.panel.browser_support import (
    REPO,
    SHOTS,
    chromium,
    login,
    running_device,
    screenshot,
    until,
)

pytestmark = pytest.mark.browser
FAST_CAMERA = "synthetic://?seed=1&density=30&width=640&height=480&fps=30"
DOC_SHOT = REPO / "docs" / "images" / "experiment-report-summary.png"
SUMMARY_SHOT = DOC_SHOT if os.environ.get("SCOPEHIVE_TEST_DOC_SHOTS") else SHOTS / "experiment-report-summary.png"


@pytest.fixture(scope="module")
def fast_camera(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("report-device")
    with running_device(data, "--source", FAST_CAMERA, "--model", str(REPO / "device" / "models" / "demo")) as url:
        yield url


def _rows(page: Any, table: str) -> list[list[str]]:
    return page.evaluate(f"[...document.querySelectorAll('#{table} tr')].map(r => [...r.cells].map(c => c.textContent.trim()))")  # type: ignore[no-any-return]


def test_report_summary_shows_unique_objects_first_and_the_dropped_camera_frames(fast_camera: str) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(20_000)
        login(page, fast_camera)
        page.goto(f"{fast_camera}/panel/experiments", wait_until="domcontentloaded")
        until(page, "document.getElementById('no-experiments') !== null")
        assert page.inner_text("#no-experiments").startswith("None yet")

        page.fill("#start-form input[name=name]", "fast camera")
        page.click("#start-form button[type=submit]")
        until(page, "document.querySelector('.experiment-row') !== null")
        time.sleep(6)
        page.click("#stop-btn")
        until(page, "!document.getElementById('stop-btn').checkVisibility()")
        experiment = page.evaluate("document.querySelector('.experiment-row').dataset.id")
        time.sleep(1.5)  # the tracks the stop ended reach the track log with the next frames

        page.goto(f"{fast_camera}/panel/api/experiments/{experiment}/report.html?view=1")
        summary = {label: value for label, value in _rows(page, "summary")}
        assert next(iter(summary)) == "Unique objects (tracked)"
        camera, recorded = int(summary["Camera frames"]), int(summary["Frames recorded"])
        dropped = int(summary["Dropped camera frames"].split()[0])
        assert camera == recorded + dropped and recorded > 0
        head = _rows(page, "classes")[0]
        assert head[1] == "unique objects (tracks)" and head[-1] == "object-frames (boxes summed over frames)"
        assert "blocks" in head[3] and "not independent" in page.inner_text("#count-notes")
        swatch = page.evaluate("getComputedStyle(document.querySelector('#classes .swatch')).backgroundColor")
        r, g, b = (int(default_colour(0)[i : i + 2], 16) for i in (1, 3, 5))
        assert swatch == f"rgb({r}, {g}, {b})"  # class 0 (cell) in the stream's colour
        gates = page.evaluate("[...document.querySelectorAll('th')].find(t => t.textContent.startsWith('Quality gates')).nextElementSibling.textContent")
        assert "{" not in gates and "out of focus below" in gates
        screenshot(page, "experiment-report", full_page=True)
        top = page.locator("#summary").bounding_box()
        bottom = page.locator("#count-notes").bounding_box()
        SUMMARY_SHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SUMMARY_SHOT), full_page=True, clip={"x": 0, "y": max(0, top["y"] - 40), "width": 1240,
                                                                  "height": bottom["y"] + bottom["height"] - top["y"] + 50})
