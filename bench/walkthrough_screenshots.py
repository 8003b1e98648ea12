"""The page screenshots of docs/walkthrough.md that no other script takes, from `make demo`'s own
settings (device/demo.yaml) in Debian's Chromium:

- walkthrough-live.jpg: the Live page (stream, this frame, focus, models on the feed);
- walkthrough-live-charts.jpg: its charts (objects per frame, sizes, focus with excluded frames);
- walkthrough-models.jpg: the Models page (what runs on the feed, where its frames run);
- walkthrough-train.jpg: the Train page of the demo project (what would be trained);
- walkthrough-experiments.jpg: the top of the Experiments page with an experiment running.

The overlay shots come from bench/overlay_screenshots.py, the report's summary from
tests/device/panel/test_report_browser.py (SCOPEHIVE_TEST_DOC_SHOTS=1), the Projects, Capture and
Annotate shots from the panel's browser tests. Run from the repository root:
`.venv/bin/python bench/walkthrough_screenshots.py` (about a minute). JPEGs stay under 150 KB.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.device.panel.browser_support import chromium, login, running_device, until  # noqa: E402

DEMO_SOURCE = "synthetic://?seed=1&density=60&width=640&height=480&fps=15"  # device/demo.yaml's
LIMIT = 150 * 1024


def shot(page: Any, path: Path, clip: dict[str, float] | None = None) -> None:
    """A JPEG of the viewport (or `clip`), quality lowered until it fits the size limit."""
    for quality in (80, 70, 60, 50, 40):
        page.screenshot(path=str(path), type="jpeg", quality=quality, clip=clip, full_page=clip is not None)
        if path.stat().st_size < LIMIT:
            break
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data, \
            running_device(Path(data), "--config", "device/demo.yaml", "--source", DEMO_SOURCE) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 820})
        page.set_default_timeout(20_000)
        login(page, url)
        page.goto(f"{url}/panel/live", wait_until="domcontentloaded")
        until(page, "(document.querySelector('#live-models td.count') || {}).textContent > ''")
        time.sleep(12)  # a few chart refreshes (every 5 s)
        shot(page, out / "walkthrough-live.jpg")
        charts = page.locator("#chart-counts").locator("xpath=../..").bounding_box()
        shot(page, out / "walkthrough-live-charts.jpg", clip={"x": 0, "y": charts["y"] - 8, "width": 1280, "height": charts["height"] + 16})
        page.goto(f"{url}/panel/models/")
        shot(page, out / "walkthrough-models.jpg")
        page.goto(f"{url}/panel/training")
        # the command it offers carries this run's fresh trainer token: shown as <token> in the doc
        page.evaluate("""document.querySelectorAll('code, pre').forEach(e =>
            e.textContent = e.textContent.replace(/SCOPEHIVE_TRAINER_TOKEN=\\S+/g, 'SCOPEHIVE_TRAINER_TOKEN=<token>'))""")
        shot(page, out / "walkthrough-train.jpg")
        page.goto(f"{url}/panel/experiments", wait_until="domcontentloaded")
        page.fill("#start-form input[name=name]", "first look")
        page.click("#start-form button[type=submit]")
        until(page, "document.querySelector('.experiment-row') !== null")
        time.sleep(4)
        shot(page, out / "walkthrough-experiments.jpg", clip={"x": 0, "y": 0, "width": 1280, "height": 300})
        page.click("#stop-btn")


if __name__ == "__main__":
    main()
