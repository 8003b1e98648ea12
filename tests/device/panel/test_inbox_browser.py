"""The Review page in Debian's Chromium against the real `python -m device run`: the device's inbox
keeps spot checks of the synthetic microscope's frames; a person accepts two and fixes one, and the
three frames join the project with the model's boxes, leave the inbox, and give count QC on the
Models page (issue 24 items 3 and 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from device.panel.store import ProjectStore
from device.storage import LocalStorage
from tests.device.panel.browser_support import chromium, login, running_device, screenshot

pytestmark = pytest.mark.browser
# Only spot checks (a fifth of the analysed frames), so every reviewed frame is one.
ENV = {"SCOPEHIVE_INBOX__SPOT_SHARE": "0.2", "SCOPEHIVE_INBOX__MIN_INTERVAL_S": "0", "SCOPEHIVE_INBOX__SEED": "5",
       "SCOPEHIVE_INBOX__NEAR_MIN": "10000", "SCOPEHIVE_INBOX__FLICKER_MIN": "10000"}


def _proposals(data: Path) -> dict[str, int]:
    """Inbox frame id -> the main model's box count, from the device's own records."""
    records = (json.loads(p.read_text()) for p in (data / "inbox").glob("*.json"))
    return {r["id"]: len(r["models"][0]["boxes"]) for r in records}


def test_three_frames_reviewed_in_chromium_join_the_project_with_their_boxes(peak_bundle: Path, tmp_path: Path) -> None:
    with running_device(tmp_path, "--model", str(peak_bundle), env=ENV) as url, chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(30_000)
        login(page, url)
        page.fill("#new-project input[name=name]", "Review")
        page.fill("#new-project input[name=classes]", "cell, crystal, debris")
        page.click("#new-project button")
        page.goto(f"{url}/panel/inbox")
        for _ in range(60):  # the device keeps a spot check every few frames at 4 frames/s
            if page.locator(".inbox-item").count() >= 3:
                break
            page.wait_for_timeout(500)
            page.reload()
        assert page.locator(".inbox-item").count() >= 3
        screenshot(page, "inbox-review")
        expected: list[int] = []
        for action in ("accept", "accept", "fix"):
            item = page.locator(".inbox-item").first
            assert "spot check" in item.locator(".reasons").inner_text()
            expected.append(_proposals(tmp_path)[str(item.get_attribute("data-id"))])
            item.locator(f"button[value={action}]").click()
            page.wait_for_load_state()
            if action == "fix":
                assert "/panel/annotate" in page.url  # Fix opens the annotator on the new image
        page.goto(f"{url}/panel/models/")
        qc = page.locator("#count-qc tr.qc-row[data-model='peaks:1.0.0']")
        assert "3" in qc.first.inner_text() and "not checked yet" not in page.locator("#count-qc").inner_text()
    store = ProjectStore(LocalStorage(tmp_path / "panel" / "store"))
    (project,) = [p for p in store.list_projects() if p.name == "Review"]
    images = store.list_images(project.slug)
    assert len(images) == 3 and all(m.source == "inbox" and m.spot_check is not None for m in images)
    assert sorted(len(store.annotation(project.slug, m.id).boxes) for m in images) == sorted(expected)
    assert not {m.spot_check.inbox_id for m in images if m.spot_check} & set(_proposals(tmp_path))  # they left the inbox
