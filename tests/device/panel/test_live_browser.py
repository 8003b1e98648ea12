"""What the scientist sees on the stream and the Live page (issue 23: items 1, 2 and 7), in
Debian's Chromium against the real `python -m device run` with the demo model:

- an out-of-focus frame's snapshot says why it was not analysed, never a count: its pixels are
  the overlay function's own drawing of that state on the same frame (the synthetic microscope
  with motion and noise off gives the device's frame exactly), not the drawing of a count;
- two models on one feed: the Live page lists each with its own count, box style and difference;
- the hive down: the Live page says so, and both pages say frames run on this device (fallback).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from device.render import ModelLayer, OverlayState, draw_overlay, encode_jpeg
from device.sources.synthetic import SyntheticConfig, SyntheticMicroscope
from tests.conftest import dets
from tests.device.panel.browser_support import (
    REPO,
    chromium,
    free_port,
    login,
    running_device,
    screenshot,
    until,
)

pytestmark = pytest.mark.browser
DEMO = REPO / "device" / "models" / "demo"
CLASSES = ("cell", "crystal", "debris")
STILL = {"seed": 3, "width": 640, "height": 480, "drift": 0, "brownian": 0, "shot_noise": 0, "read_noise": 0}
STILL_SOURCE = "synthetic://?fps=4&" + "&".join(f"{k}={v}" for k, v in STILL.items())


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _page(browser: Any, url: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    login(page, url)
    return page


def _snapshot(page: Any, url: str) -> np.ndarray:
    """/snapshot.jpg as the logged-in browser gets it."""
    body = page.context.request.get(f"{url}/snapshot.jpg").body()
    return cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)


def _as_served(image: np.ndarray) -> np.ndarray:
    """Through the stream's own JPEG encoding (quality 80, the default)."""
    return cv2.imdecode(np.frombuffer(encode_jpeg(image, 80), np.uint8), cv2.IMREAD_COLOR)


def test_an_out_of_focus_frame_says_why_on_the_snapshot_and_shows_no_count(browser: Any, tmp_path: Path) -> None:
    env = {"SCOPEHIVE_QUALITY__FOCUS_MIN": "1e12"}  # no frame is sharp enough: every one is out of focus
    with running_device(tmp_path, "--model", str(DEMO), "--source", STILL_SOURCE, env=env) as url:
        page = _page(browser, url)
        page.goto(f"{url}/panel/live", wait_until="domcontentloaded")
        until(page, "(document.querySelector('#live-models tr[data-slot=main] td.count') || {}).textContent === 'not analysed: out of focus'")
        assert "Excluded: out of focus" in page.inner_text("#live-frame")
        served = _snapshot(page, url)
        page.context.close()
    raw = SyntheticMicroscope(SyntheticConfig(**STILL)).read().image  # type: ignore[arg-type]
    excluded = draw_overlay(raw, OverlayState(4.0, (ModelLayer("synthetic-cells", "out_of_focus", None, CLASSES),)))
    counted = draw_overlay(raw, OverlayState(4.0, (ModelLayer("synthetic-cells", "local", dets([]), CLASSES),)))
    mask = np.ones(raw.shape[:2], bool)
    fx1, fy1, fx2, fy2 = excluded.line_boxes[0]  # the FPS figure differs with the machine's speed
    mask[: (fy2 // 8 + 2) * 8, : (fx2 // 8 + 2) * 8] = False  # its JPEG blocks too
    diff = np.abs(served.astype(int) - _as_served(excluded.image).astype(int)).max(axis=2)
    assert diff[mask].mean() < 0.5 and np.percentile(diff[mask], 99.9) <= 8, "the snapshot is the overlay of an excluded frame"
    hx1, hy1, hx2, hy2 = excluded.line_boxes[1]
    line = np.s_[hy1:hy2, hx1:hx2]
    against_count = np.abs(served[line].astype(int) - _as_served(counted.image)[line].astype(int)).max(axis=2)
    assert (against_count > 60).mean() > 0.05, "where a count would be, the snapshot shows the reason instead"
    assert np.abs(served[200:, :].astype(int) - raw[200:, :].astype(int)).max() <= 40, "no box drawn on the frame"


def test_two_models_on_one_feed_are_listed_each_with_its_own_count(browser: Any, tmp_path: Path) -> None:
    models = json.dumps([{"name": "strict", "bundle": str(DEMO), "score_threshold": 0.7}])
    with running_device(tmp_path, "--model", str(DEMO), env={"SCOPEHIVE_MODELS": models}) as url:
        page = _page(browser, url)
        page.goto(f"{url}/panel/live", wait_until="domcontentloaded")
        until(page, "[...document.querySelectorAll('#live-models td.count')].filter(td => /^\\d+$/.test(td.textContent)).length === 2")
        rows = page.evaluate("""[...document.querySelectorAll('#live-models tr[data-slot]')].map(r =>
            [...r.cells].map(c => c.textContent))""")
        head = page.evaluate("[...document.querySelectorAll('#live-models th')].map(h => h.textContent)")
        assert head == ["Slot", "Model", "Box style", "Runs on", "Objects", *CLASSES, "vs main"]
        (main, strict) = rows
        assert (main[0], main[2], main[3], strict[0], strict[2]) == ("main", "solid", "this device", "strict", "dashed")
        assert sum(int(n) for n in main[5:8]) == int(main[4]) and sum(int(n) for n in strict[5:8]) == int(strict[4])
        assert strict[8] == f"{int(strict[4]) - int(main[4]):+d}"
        screenshot(page, "live-two-models", full_page=True)
        page.context.close()


def test_the_live_page_says_the_hive_is_down_and_frames_run_on_this_device(browser: Any, tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # no hive server listens there
    env = {"SCOPEHIVE_HIVE__ENDPOINTS": nobody, "SCOPEHIVE_HIVE__PROBE_INTERVAL_S": "0.5"}
    with running_device(tmp_path, "--model", str(DEMO), "--backend", "triton", env=env) as url:
        page = _page(browser, url)
        page.goto(f"{url}/panel/live", wait_until="domcontentloaded")
        until(page, "!document.getElementById('live-hive').hidden")
        banner = page.inner_text("#live-hive")
        assert "hive is down for main" in banner and "this device's own model (fallback)" in banner and nobody in banner
        until(page, "(document.querySelector('#live-models tr[data-slot=main] td.route') || {}).textContent === "
                    "'this device (fallback: the hive did not answer)'")
        page.goto(f"{url}/panel/models/")
        cell = page.inner_text("#feed-models tr[data-slot=main] td.route")
        assert "triton" in cell and "this device (fallback)" in cell and "hive down" in cell
        screenshot(page, "models-hive-down")
        page.context.close()
