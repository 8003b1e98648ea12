"""In a real browser (Debian's Chromium through Playwright, the panel's CSP enforced) against the
real device process with the demo model on a synthetic channel flow: draw a counting line across
the stream with the mouse and watch the crossing count rise on the live view."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.device.panel.browser_support import (
    REPO,
    chromium,
    drag,
    login,
    running_device,
    screenshot,
)

pytestmark = pytest.mark.browser
FLOW = "synthetic://?seed=4&width=640&height=480&fps=10&motion=flow&flow_speed=8&density=120&drift=0"


def until(page: Any, expression: str, timeout_s: float = 30.0) -> None:
    """Poll through DevTools (page.evaluate is not subject to the page's CSP, wait_for_function is)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def flow_device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("flow-device")
    with running_device(data, "--source", FLOW, "--model", str(REPO / "device" / "models" / "demo")) as url:
        yield url


def _count(page: Any) -> int:
    text = page.inner_text("#crossing-count")
    return int(text) if text.isdigit() else -1


def test_draw_a_counting_line_and_see_the_count_rise(flow_device: str) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(30_000)
        violations: list[str] = []
        page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
        login(page, flow_device)
        page.goto(f"{flow_device}/panel/live", wait_until="domcontentloaded")
        until(page, "document.getElementById('stream').naturalWidth === 640")
        until(page, "document.getElementById('crossing-count').textContent === 'no line'")

        page.click("#draw-line")
        page.locator("#stream").scroll_into_view_if_needed()  # the button sits below the stream
        box = page.locator("#stream").bounding_box()
        x = box["x"] + box["width"] / 2  # a vertical line across the whole channel, in the middle
        drag(page, x, box["y"] + 2, x, box["y"] + box["height"] - 2)
        page.wait_for_selector("#page-message.ok, #page-message.error")
        assert "counting line set" in page.inner_text("#page-message")
        state = page.evaluate("panel.send('/panel/api/tracking', 'GET').then(r => r.data)")
        x1, y1, x2, y2 = state["line"]
        assert abs(x1 - 320) <= 3 and abs(x2 - 320) <= 3 and y1 < 10 and y2 > 470

        until(page, "Number(document.getElementById('crossing-count').textContent) > 0", 60)
        first = _count(page)
        until(page, f"Number(document.getElementById('crossing-count').textContent) > {first}", 60)
        assert _count(page) > first > 0
        assert int(page.inner_text("#crossing-reverse")) <= 1  # the flow goes one way
        screenshot(page, "live-tracking", full_page=True)

        page.fill("#flow-rate", "-1")  # bad input: a clear message, nothing changed
        page.click("#apply-flow")
        page.wait_for_selector("#page-message.error")
        assert "nothing was changed" in page.inner_text("#page-message")
        assert page.evaluate("panel.send('/panel/api/tracking', 'GET').then(r => r.data.flow_rate_ul_min)") is None
    assert violations == []
