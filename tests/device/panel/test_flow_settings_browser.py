"""Flow rate and depth boxes of the Live page's tracking card in a real browser (Debian's Chromium)
against the real `python -m device run`: the value set in the config shows in the box, a decimal
comma is taken, text that is no number is refused with a message (never "applied")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.device.panel.browser_support import (
    REPO,
    chromium,
    login,
    running_device,
    screenshot,
    until,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def device_with_flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("flow-settings")
    with running_device(data, "--model", str(REPO / "device" / "models" / "demo"),
                        env={"SCOPEHIVE_TRACKING__FLOW_RATE_UL_MIN": "2.5"}) as url:
        yield url


def _in_force(page: object) -> dict[str, float | None]:
    return page.evaluate("panel.send('/panel/api/tracking', 'GET').then(r => r.data)")  # type: ignore[attr-defined,no-any-return]


def test_flow_rate_1_comma_5_is_applied_as_1_5_and_abc_is_refused(device_with_flow: str) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(20_000)
        login(page, device_with_flow)
        page.goto(f"{device_with_flow}/panel/live", wait_until="domcontentloaded")
        # the config's flow rate is what the box and the line beside it show
        until(page, "document.getElementById('flow-rate').value === '2.5'")
        assert "flow rate 2.5 µL/min" in page.inner_text("#flow-in-force")

        page.fill("#flow-rate", "1,5")
        page.fill("#depth", "20")
        page.click("#apply-flow")
        page.wait_for_selector("#page-message.ok, #page-message.error")
        assert "1.5 µL/min" in page.inner_text("#page-message") and "20 µm" in page.inner_text("#page-message")
        state = _in_force(page)
        assert state["flow_rate_ul_min"] == 1.5 and state["depth_um"] == 20.0
        until(page, "document.getElementById('flow-in-force').textContent.includes('1.5 µL/min')")

        page.evaluate("document.getElementById('page-message').remove()")
        page.fill("#flow-rate", "abc")
        page.click("#apply-flow")
        page.wait_for_selector("#page-message.ok, #page-message.error")
        message = page.inner_text("#page-message")
        assert "Flow rate (µL/min): 'abc' is not a number" in message and "applied" not in message
        assert "flow_rate_ul_min" not in message
        assert _in_force(page)["flow_rate_ul_min"] == 1.5  # nothing changed
        assert "1.5 µL/min" in page.inner_text("#flow-in-force")
        screenshot(page, "live-flow-settings-refused")
