"""In a real browser (Debian's Chromium through Playwright) against the real device process with
the demo model on a synthetic channel flow: draw a counting line across the stream with the
mouse and watch the crossing count rise on the live view; the stream shows the line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import stop_process
from tests.device.panel.test_browser import ARGS, CHROMIUM, PASSWORD, _drag, _free_port, _until

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[3]
FLOW = "synthetic://?seed=4&width=640&height=480&fps=10&motion=flow&flow_speed=8&density=120&drift=0"


@pytest.fixture(scope="module")
def flow_device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("flow-device")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPEHIVE_") or k.startswith("SCOPEHIVE_TEST_")}
    env["SCOPEHIVE_PANEL_PASSWORD"] = PASSWORD
    log = (data / "device.log").open("wb")
    cmd = [sys.executable, "-m", "device", "run", "--source", FLOW, "--model", str(ROOT / "device" / "models" / "demo"),
           "--data-dir", str(data), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the device did not start: {(data / 'device.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        stop_process(proc, timeout=20)


def _count(page: Any) -> int:
    text = page.inner_text("#crossing-count")
    return int(text) if text.isdigit() else -1


def test_draw_a_counting_line_and_see_the_count_rise(flow_device: str, artifacts_dir: Path) -> None:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make system-deps)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})  # the panel's CSP enforced
        page.set_default_timeout(30_000)
        violations: list[str] = []
        page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
        page.goto(f"{flow_device}/panel/login")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{flow_device}/panel/live", wait_until="domcontentloaded")
        _until(page, "document.getElementById('stream').naturalWidth === 640")
        _until(page, "document.getElementById('crossing-count').textContent === 'no line'")

        page.click("#draw-line")
        page.locator("#stream").scroll_into_view_if_needed()  # the button sits below the stream
        box = page.locator("#stream").bounding_box()
        x = box["x"] + box["width"] / 2  # a vertical line across the whole channel, in the middle
        _drag(page, x, box["y"] + 2, x, box["y"] + box["height"] - 2)
        page.wait_for_selector("#page-message.ok, #page-message.error")
        assert "counting line set" in page.inner_text("#page-message")
        state = page.evaluate("panel.send('/panel/api/tracking', 'GET').then(r => r.data)")
        x1, y1, x2, y2 = state["line"]
        assert abs(x1 - 320) <= 3 and abs(x2 - 320) <= 3 and y1 < 10 and y2 > 470

        _until(page, "Number(document.getElementById('crossing-count').textContent) > 0", 60)
        first = _count(page)
        _until(page, f"Number(document.getElementById('crossing-count').textContent) > {first}", 60)
        assert _count(page) > first > 0
        assert page.inner_text("#crossing-reverse") == "0" or int(page.inner_text("#crossing-reverse")) <= 1
        shots = artifacts_dir / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "live-tracking.png"), full_page=True)

        page.fill("#flow-rate", "-1")  # bad input: a clear message, nothing changed
        page.click("#apply-flow")
        page.wait_for_selector("#page-message.error")
        assert "nothing was changed" in page.inner_text("#page-message")
        browser.close()
    assert violations == []
