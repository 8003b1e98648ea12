"""The microscopist's journey in a real browser (Debian's Chromium through Playwright) against the
real device process: log in, create a project, capture three frames from the synthetic microscope,
draw boxes with the mouse, reload and see them kept, undo, export the package and check the
trainer's reader accepts it, upload a model bundle and switch the running device to it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import stop_process
from tests.device.panel.helpers import bundle_zip

pytestmark = pytest.mark.browser
PASSWORD = "microscope lab pass"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def device_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m device run` on the synthetic microscope, no model yet, panel on a free port."""
    data = tmp_path_factory.mktemp("device")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPEHIVE_") or k.startswith("SCOPEHIVE_TEST_")}
    env["SCOPEHIVE_PANEL_PASSWORD"] = PASSWORD
    log = (data / "device.log").open("wb")
    cmd = [sys.executable, "-m", "device", "run", "--source", "synthetic://?seed=3&width=640&height=480&fps=8",
           "--data-dir", str(data), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[3])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code in (200, 503):
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the device did not start: {(data / 'device.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        stop_process(proc, timeout=20)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make system-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


def _journey_bundle(tmp_path: Path) -> tuple[Path, str, str]:
    """The trainer's demo bundle zipped when it is in the repo, else a tiny real ONNX bundle."""
    import json
    import zipfile

    demo = Path(__file__).resolve().parents[3] / "device" / "models" / "demo"
    if (demo / "model.json").is_file() and (demo / "model.onnx").is_file():
        path = tmp_path / "demo.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for file in sorted(p for p in demo.rglob("*") if p.is_file()):
                archive.write(file, file.relative_to(demo).as_posix())
        card = json.loads((demo / "model.json").read_text())
        return path, card["name"], card["version"]
    return bundle_zip(tmp_path / "tiny.zip", name="blood", version="7"), "blood", "7"


def _drag(page: Any, x0: float, y0: float, x1: float, y1: float) -> None:
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()


def _wait_saved(page: Any, revision: int) -> None:
    page.wait_for_function(f"window.annotator && window.annotator.doc.revision === {revision} && !window.annotator.saving")


def test_the_whole_journey(device_url: str, browser: Any, artifacts_dir: Path, tmp_path: Path) -> None:
    shots = artifacts_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    # Playwright's wait_for_function compiles its predicate with eval, which the panel's CSP forbids;
    # test_pages_run_under_the_content_security_policy checks the pages with the CSP enforced.
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(20_000)

    page.goto(f"{device_url}/panel/projects/")
    assert "/panel/login" in page.url
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.fill("#new-project input[name=name]", "Blood smear")
    page.fill("#new-project input[name=classes]", "cell, crystal, debris")
    page.click("#new-project button")
    assert page.inner_text("#current-project") == "Blood smear"
    page.screenshot(path=str(shots / "projects.png"))

    page.click("text=Capture")
    page.wait_for_function("document.getElementById('preview').naturalWidth > 0")
    for n in (1, 2, 3):
        page.click("#capture-btn")
        page.wait_for_function(f"document.getElementById('image-count').textContent === '{n}'")
    assert "640x480" in page.inner_text("#page-message")
    page.screenshot(path=str(shots / "capture.png"))

    page.click("text=Annotate")
    page.wait_for_function("window.annotator && !window.annotator.loading")
    box = page.locator("#canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    _drag(page, cx - 200, cy - 150, cx - 80, cy - 40)
    _wait_saved(page, 1)
    page.keyboard.press("2")  # relabel the selected box: crystal
    _wait_saved(page, 2)
    page.keyboard.press("Escape")  # deselect, so the next number key picks the class for new boxes
    page.keyboard.press("1")
    _drag(page, cx + 40, cy + 30, cx + 160, cy + 120)
    _wait_saved(page, 3)
    assert "annotated 1/3" in page.inner_text("#progress")
    page.screenshot(path=str(shots / "annotate.png"))

    page.reload()
    page.wait_for_function("window.annotator && window.annotator.doc.revision === 3")
    kept = page.evaluate("window.annotator.doc.boxes")
    assert len(kept) == 2 and sorted(b["class_id"] for b in kept) == [0, 1]
    page.locator("#canvas").click(position={"x": 5, "y": 5})  # focus the canvas (an empty corner)
    page.keyboard.press("Control+z")  # undo needs history from this visit: redraw then undo
    _drag(page, cx - 40, cy - 140, cx + 20, cy - 90)
    _wait_saved(page, 4)
    page.keyboard.press("Control+z")
    _wait_saved(page, 5)
    page.reload()
    page.wait_for_function("window.annotator && window.annotator.doc.revision === 5")
    assert len(page.evaluate("window.annotator.doc.boxes")) == 2

    second = context.new_page()  # a second tab on the same image, then a stale edit in the first
    second.goto(page.url)
    second.wait_for_function("window.annotator && window.annotator.doc.revision === 5")
    _drag(second, cx - 300, cy + 100, cx - 220, cy + 180)
    second.wait_for_function("window.annotator.doc.revision === 6 && !window.annotator.saving")
    _drag(page, cx + 200, cy - 200, cx + 260, cy - 150)
    page.wait_for_selector("#page-message.error")
    assert "changed in another tab" in page.inner_text("#page-message")
    assert page.evaluate("window.annotator.doc.revision") == 6 and len(page.evaluate("window.annotator.doc.boxes")) == 3
    second.close()

    page.keyboard.press("ArrowRight")
    page.wait_for_function("window.annotator.index === 1 && !window.annotator.loading")
    page.check("#negative")
    page.wait_for_function("window.annotator.doc.revision === 1 && !window.annotator.saving")
    assert "annotated 2/3" in page.inner_text("#progress")

    page.click("text=Datasets")
    with page.expect_download() as download:
        page.click("#export-package button")
    package = tmp_path / "package.zip"
    download.value.save_as(package)
    from trainer.dataset import load_dataset_package

    dataset = load_dataset_package(package)
    assert dataset.classes == ["cell", "crystal", "debris"] and len(dataset.samples) == 2
    assert sorted(len(s.boxes) for s in dataset.samples) == [0, 3]
    assert all(s.image.shape[:2] == (480, 640) for s in dataset.samples)
    page.screenshot(path=str(shots / "datasets.png"))

    page.click("text=Models")
    bundle, name, version = _journey_bundle(tmp_path)
    label = f"{name}:{version}"
    page.set_input_files("#model-upload input[type=file]", str(bundle))
    page.click("#model-upload button")
    assert f"Model {label} added" in page.inner_text("main")
    page.click(f".model-row[data-label='{label}'] button.primary")
    assert f"The device now runs {label}" in page.inner_text("main")
    assert page.inner_text("#running-model") == label
    health = page.request.get(f"{device_url}/healthz").json()  # the details need the login
    assert health["model"]["name"] == name and health["model"]["version"] == version
    page.screenshot(path=str(shots / "models.png"))

    page.click("text=Annotate")  # pre-annotate the third image with the model just switched to
    page.wait_for_function("window.annotator && !window.annotator.loading")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("window.annotator.index === 2 && !window.annotator.loading")
    page.click("#preannotate")
    page.wait_for_function("document.getElementById('save-state').textContent.includes('proposals from')")
    proposals = page.evaluate("window.annotator.proposals.length")
    assert proposals > 0, "the running model proposed nothing on a synthetic frame full of objects"
    page.click("#accept-all")
    page.wait_for_function("window.annotator.doc.revision === 1 && !window.annotator.saving")
    assert len(page.evaluate("window.annotator.doc.boxes")) == proposals and "annotated 3/3" in page.inner_text("#progress")

    page.click("text=Capture")  # uploads through the file picker: a bad batch changes nothing
    page.wait_for_function("document.getElementById('preview').naturalWidth > 0")  # capture.js is running
    deep = tmp_path / "deep.tiff"
    import cv2
    import numpy as np

    cv2.imwrite(str(deep), (np.indices((120, 160)).sum(axis=0) * 200).astype(np.uint16))
    (tmp_path / "notes.png").write_bytes(b"these are my notes, not an image")
    page.set_input_files("#file-input", [str(deep), str(tmp_path / "notes.png")])
    page.wait_for_selector("#page-message.error")
    assert "notes.png: not a PNG, JPEG or TIFF image" in page.inner_text("#page-message")
    assert page.inner_text("#image-count") == "3"
    page.set_input_files("#file-input", [str(deep)])
    page.wait_for_function("document.getElementById('image-count').textContent === '4'")

    page.goto(f"{device_url}/panel/live", wait_until="domcontentloaded")
    page.wait_for_function("document.getElementById('stream').naturalWidth > 0")
    page.wait_for_function("!document.getElementById('live-frame').textContent.startsWith('waiting')")
    page.screenshot(path=str(shots / "live.png"), full_page=True)
    context.close()


def _until(page: Any, expression: str, timeout_s: float = 20.0) -> None:
    """Poll through DevTools (not subject to the page's CSP) until `expression` is true."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.1)


def test_pages_run_under_the_content_security_policy(device_url: str, browser: Any) -> None:
    """Every page's own scripts, styles, images and fetches work with the CSP enforced (no violations)."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(20_000)
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto(f"{device_url}/panel/login")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.fill("#new-project input[name=name]", "CSP check")
    page.fill("#new-project input[name=classes]", "cell")
    page.click("#new-project button")
    page.goto(f"{device_url}/panel/capture")
    _until(page, "document.getElementById('preview').naturalWidth > 0")
    page.goto(f"{device_url}/panel/annotate")
    _until(page, "!window.annotator || !window.annotator.loading")
    for path in ("/panel/projects/", "/panel/datasets/", "/panel/models/"):
        page.goto(f"{device_url}{path}")
    page.goto(f"{device_url}/panel/live", wait_until="domcontentloaded")
    _until(page, "document.getElementById('stream').naturalWidth > 0")
    _until(page, "!document.getElementById('live-frame').textContent.startsWith('waiting')")
    context.close()
    assert violations == []
