"""The drift alarm end to end in Chromium: the real device runs a bundle whose baseline says 200
objects per frame on a field of ~10; the banners of the Live and Experiments pages say what changed,
/healthz too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import requests

from device.detections import Detections
from device.drift.baseline import VALIDATION, build_baseline
from tests.device.panel.browser_support import (
    REPO,
    chromium,
    login,
    running_device,
    screenshot,
    until,
)

pytestmark = pytest.mark.browser


def _bundle_expecting_crowds(target: Path) -> Path:
    shutil.copytree(REPO / "device" / "models" / "demo", target)
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(20):
        xy = rng.uniform(0, 600, (200, 2))
        frames.append(Detections(np.concatenate([xy, xy + 20], 1), rng.uniform(0.5, 1, 200), rng.integers(0, 3, 200)))
    card = json.loads((target / "model.json").read_text())
    card["metrics"]["baseline"] = json.loads(build_baseline(frames, card["classes"], VALIDATION, "a crowded training set").model_dump_json())
    (target / "model.json").write_text(json.dumps(card))
    return target


def test_the_live_page_says_the_model_drifted_and_what_changed(tmp_path: Path) -> None:
    bundle = _bundle_expecting_crowds(tmp_path / "crowded")
    env = {"SCOPEHIVE_DRIFT__WINDOW_FRAMES": "20", "SCOPEHIVE_DRIFT__MIN_OBJECTS": "20", "SCOPEHIVE_DRIFT__CONFIRM_FRAMES": "3"}
    (tmp_path / "data").mkdir()
    with running_device(tmp_path / "data", "--model", str(bundle), "--source",
                        "synthetic://?seed=3&width=640&height=480&fps=10", env=env) as url, chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(60_000)
        login(page, url)
        page.goto(f"{url}/panel/live", wait_until="domcontentloaded")
        until(page, "!document.getElementById('live-drift').hidden")
        banner = page.inner_text("#live-drift")
        assert banner.startswith("Drift alarm: the model's numbers may not be trustworthy.")
        assert "% fewer objects per frame than in training" in banner
        screenshot(page, "live-drift-alarm")
        details = page.context.request.get(f"{url}/healthz").json()
        assert details["drift"]["alarm"] and "fewer objects per frame" in details["drift"]["message"]
        assert requests.get(f"{url}/healthz", timeout=5).json().keys() <= {"ok", "status"}  # anonymous: ok or not only
        page.goto(f"{url}/panel/experiments", wait_until="domcontentloaded")  # the Experiments page says it too
        until(page, "!document.getElementById('experiment-drift').hidden")
        assert "fewer objects per frame than in training" in page.inner_text("#experiment-drift")
        page.context.close()
