"""Each page's main journey in a real browser (Debian's Chromium through Playwright) against one real
`python -m device run` with the demo model: the first screen, projects, capture, annotate, datasets,
models and live. Screenshots of every page land in artifacts/screenshots/ (the README shows some)."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests

from tests.device.panel.browser_support import (  # noqa: F401  (test_tracking_browser imports ARGS ... _until from here)
    ARGS,
    CHROMIUM,
    PASSWORD,
    REPO,
    accept_dialogs,
    chromium,
    drag,
    login,
    running_device,
    screenshot,
    until,
    wait_saved,
)
from tests.device.panel.browser_support import drag as _drag  # noqa: F401
from tests.device.panel.browser_support import free_port as _free_port  # noqa: F401
from tests.device.panel.browser_support import until as _until  # noqa: F401
from tests.device.panel.helpers import bundle_zip

pytestmark = pytest.mark.browser
DEMO = REPO / "device" / "models" / "demo"
CLASSES = ["cell", "crystal", "debris"]


@pytest.fixture(scope="module")
def device_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The device as `make demo` runs it (demo model, calibrated), on a fresh data folder."""
    data = tmp_path_factory.mktemp("device")
    env = {"SCOPEHIVE_UM_PER_PIXEL": "0.65", "SCOPEHIVE_DEVICE_NAME": "bench-scope"}
    with running_device(data, "--model", str(DEMO), env=env) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any, device_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True, bypass_csp=True)  # wait_for_function evals
    page = context.new_page()
    page.set_default_timeout(30_000)
    login(page, device_url)
    yield page
    context.close()


def _project(page: Any, url: str, name: str, classes: str = "cell, crystal, debris") -> None:
    """Create (or switch to) a project through the Projects page."""
    page.goto(f"{url}/panel/projects/")
    card = page.locator(".card.project", has=page.locator("h2", has_text=re.compile(f"^{re.escape(name)}$")))
    if card.count():
        if card.locator("button.switch").count():
            card.locator("button.switch").click()
        return
    page.fill("#new-project input[name=name]", name)
    page.fill("#new-project input[name=classes]", classes)
    page.click("#new-project button")
    assert page.inner_text("#current-project") == name


def _cookies(page: Any) -> dict[str, str]:
    """The browser's login, for plain HTTP calls that need it (details of /healthz, the stream)."""
    return {c["name"]: c["value"] for c in page.context.cookies()}


def _capture(page: Any, url: str, count: int) -> None:
    page.goto(f"{url}/panel/capture")
    page.wait_for_function("document.getElementById('preview').naturalWidth > 0")
    start = int(page.inner_text("#image-count"))
    for n in range(start + 1, start + count + 1):
        page.click("#capture-btn")
        page.wait_for_function(f"document.getElementById('image-count').textContent === '{n}'")


def test_projects_first_screen_is_the_demo_project_and_stays_chosen(page: Any, device_url: str) -> None:
    assert page.inner_text("#current-project") == "Demo (synthetic-cells model)"  # not an empty list
    demo = page.locator(".card.project.current")
    assert [demo.locator("input[name=class_name]").nth(i).input_value() for i in range(3)] == CLASSES
    screenshot(page, "projects-first-start")
    page.fill("#new-project input[name=name]", "No classes")  # the browser's `required` aside, the server refuses
    page.evaluate("document.querySelector('#new-project input[name=classes]').removeAttribute('required')")
    page.click("#new-project button")
    assert "at least one class" in page.inner_text(".flash.error")
    assert page.locator(".card.project h2", has_text="No classes").count() == 0
    _project(page, device_url, "Blood smear", "cell")
    card = page.locator(".card.project.current")
    card.locator("input[name=new_class]").fill("crystal, debris")  # the add box takes a comma list
    card.locator("button:has-text('Save classes')").click()
    card = page.locator(".card.project.current")
    assert [card.locator("input[name=class_name]").nth(i).input_value() for i in range(3)] == CLASSES
    _project(page, device_url, "Throwaway", "x")
    asked = accept_dialogs(page)
    page.locator(".card.project", has=page.locator("h2", has_text="Throwaway")).locator("button:has-text('Delete project')").click()
    page.wait_for_selector(".flash.ok")
    assert asked and "Delete project 'Throwaway' with 0 images (0 annotated) and 0 model bundles?" in asked[0]
    assert page.locator("h2", has_text="Throwaway").count() == 0
    _project(page, device_url, "Blood smear")
    page.click("header button.link:has-text('Log out')")
    login(page, device_url)
    assert page.inner_text("#current-project") == "Blood smear", "the current project survives logging out"
    screenshot(page, "projects")
    assert requests.get(f"{device_url}/favicon.ico", timeout=5).status_code == 200


def test_capture_keeps_the_page_inside_the_window_and_counts_in_words(page: Any, device_url: str, tmp_path: Path) -> None:
    _project(page, device_url, "Capture journey", "cell, crystal, debris")
    page.goto(f"{device_url}/panel/capture/")  # the trailing slash is the same page
    page.wait_for_function("document.getElementById('preview').naturalWidth > 0")
    page.click("#capture-btn")
    page.wait_for_function("document.getElementById('image-count').textContent === '1'")
    assert page.inner_text("main h2") == "1 image"
    assert "640x480, uint8, 1 channel" in page.inner_text("#page-message"), "a monochrome camera's capture keeps one channel"
    long_name = tmp_path / ("a_very_long_microscope_file_name_without_any_spaces_" * 3 + ".png")
    cv2.imwrite(str(long_name), np.full((60, 80), 120, np.uint8))
    page.set_input_files("#file-input", [str(long_name)])
    page.wait_for_function("document.getElementById('image-count').textContent === '2'")
    for n in range(3, 10):
        page.click("#capture-btn")
        page.wait_for_function(f"document.getElementById('image-count').textContent === '{n}'")
    page.reload()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the capture page is {overflow} px wider than the window"
    asked = accept_dialogs(page)
    first = page.locator("#image-grid a").first
    first.hover()
    first.locator(".delete-image").click()
    page.wait_for_function("document.getElementById('image-count').textContent === '8'")
    assert asked and asked[0].startswith("Delete image capture_") and "cannot be undone" in asked[0]
    screenshot(page, "capture")


def test_annotate_keeps_next_box_and_selected_box_classes_apart(page: Any, device_url: str) -> None:
    _project(page, device_url, "Annotate journey")
    _capture(page, device_url, 2)
    page.set_viewport_size({"width": 1024, "height": 768})
    page.click("text=Annotate")
    page.wait_for_function("window.annotator && !window.annotator.loading")
    for group in page.locator(".toolbar:not([hidden]) .group").all():  # at 1024 px the toolbar wraps between groups only
        box = group.bounding_box()
        assert box is not None and box["height"] < 40, f"a toolbar group wraps inside: {group.inner_text()!r}"
    stage = page.locator("#canvas").bounding_box()
    cx, cy = stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2
    drag(page, cx - 200, cy - 150, cx - 100, cy - 60)
    wait_saved(page, 1)
    page.keyboard.press("2")  # picks the class of the NEXT box: the box just drawn stays a cell
    assert page.evaluate("window.annotator.doc.boxes.map(b => b.class_id)") == [0]
    assert page.locator("#class-picker option:checked").inner_text() == "2 crystal"
    drag(page, cx + 40, cy + 30, cx + 150, cy + 120)
    wait_saved(page, 2)
    assert page.evaluate("window.annotator.doc.boxes.map(b => b.class_id)") == [0, 1]
    page.mouse.click(cx - 150, cy - 100)  # select the first box: its class shows apart from the next box's
    assert page.locator("#selected-picker option:checked").inner_text() == "1 cell"
    page.keyboard.press("3")
    wait_saved(page, 3)
    assert page.evaluate("window.annotator.doc.boxes.map(b => b.class_id)") == [2, 1]
    assert page.locator("#class-picker option:checked").inner_text() == "2 crystal", "relabelling leaves the next-box class alone"
    assert page.inner_text("#legend").split() == ["1", "cell", "0", "2", "crystal", "1", "3", "debris", "1"]
    colours = page.evaluate("JSON.parse(document.getElementById('annotate-data').textContent).colors")
    stream = requests.get(f"{device_url}/api/live?events=1", timeout=10, cookies=_cookies(page))
    live = json.loads(stream.text.split("data: ", 1)[1])
    assert live["colours"] == {name: colours[str(i)] for i, name in enumerate(CLASSES)}, "the stream draws the annotator's colours"
    screenshot(page, "annotate")
    page.keyboard.press("Delete")  # the selected box
    wait_saved(page, 4)
    assert page.evaluate("window.annotator.doc.boxes.map(b => b.class_id)") == [1]
    asked = accept_dialogs(page)
    page.click("#delete-image")
    page.wait_for_function("window.annotator.index === 0 && !window.annotator.loading && document.getElementById('position').textContent === '1 / 1'")
    assert asked and "with its 1 box?" in asked[0]
    page.click("#preannotate")  # the demo model proposes; accept only confident cells in one go
    page.wait_for_function("window.annotator.proposals.length > 0")
    proposals = page.evaluate("window.annotator.proposals")
    page.fill("#accept-score", "0.5")
    page.select_option("#accept-class", label="cell")
    page.click("#accept-matching")
    wait_saved(page, 1)
    kept = page.evaluate("window.annotator.doc.boxes")
    assert len(kept) == sum(1 for p in proposals if p["score"] >= 0.5 and p["class_id"] == 0) > 0
    assert all(b["class_id"] == 0 for b in kept) and len(page.evaluate("window.annotator.proposals")) == len(proposals) - len(kept)
    screenshot(page, "annotate-proposals")


def test_datasets_export_records_the_acquisition_and_import_round_trips(page: Any, device_url: str, tmp_path: Path) -> None:
    _project(page, device_url, "Dataset journey")
    _capture(page, device_url, 2)
    page.click("text=Annotate")
    page.wait_for_function("window.annotator && !window.annotator.loading")
    stage = page.locator("#canvas").bounding_box()
    cx, cy = stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2
    drag(page, cx - 120, cy - 90, cx - 20, cy - 10)
    wait_saved(page, 1)
    page.click("text=Datasets")
    with page.expect_download() as download:
        page.click("#export-package button")
    package = tmp_path / "package.zip"
    download.value.save_as(package)
    from trainer.dataset import load_dataset_package

    dataset = load_dataset_package(package)
    assert dataset.classes == CLASSES and len(dataset.samples) == 1
    manifest = json.loads(zipfile.ZipFile(package).read("manifest.json"))
    (record,) = manifest["acquisition"].values()
    assert record["device"] == "bench-scope" and record["um_per_pixel"] == 0.65 and record["source"].startswith("synthetic://")
    with page.expect_download() as download:
        page.click(".export-coco button")
    coco = tmp_path / "coco.zip"
    download.value.save_as(coco)
    _project(page, device_url, "Imported", "cell")
    page.click("text=Datasets")
    page.select_option("#import-form select[name=format]", "coco")
    page.set_input_files("#import-form input[type=file]", str(coco))
    page.click("#import-form button")
    assert "Imported 1 annotated image from coco.zip" in page.inner_text(".flash.ok")
    screenshot(page, "datasets")


def _demo_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(p for p in DEMO.rglob("*") if p.is_file()):
            archive.write(file, file.relative_to(DEMO).as_posix())
    return path


def test_models_upload_run_and_delete_with_one_row_per_model(page: Any, device_url: str, tmp_path: Path) -> None:
    _project(page, device_url, "Demo (synthetic-cells model)")
    page.click("text=Models")
    label = page.inner_text("#running-model")
    assert label.startswith("synthetic-cells:")
    for attempt in range(2):  # the running model, uploaded twice: one row, marked running, no Delete
        page.set_input_files("#model-upload input[type=file]", str(_demo_zip(tmp_path / f"demo{attempt}.zip")))
        page.click("#model-upload button")
        message = page.inner_text(".flash")
        assert ("the device already runs it" in message) if attempt == 0 else ("is already here" in message)
        assert page.locator(".model-row").count() == 1 and page.locator(".model-row.running").count() == 1
    tiny = bundle_zip(tmp_path / "tiny.zip", name="tiny", version="1", classes=CLASSES)
    page.set_input_files("#model-upload input[type=file]", str(tiny))
    page.click("#model-upload button")
    assert "Choose 'Run it'" in page.inner_text(".flash.ok")
    page.click(".model-row[data-label='tiny:1'] button.primary")
    assert "The device now runs tiny:1" in page.inner_text(".flash.ok")
    assert requests.get(f"{device_url}/healthz", timeout=5, cookies=_cookies(page)).json()["model"]["name"] == "tiny"
    assert page.locator(".model-row.running").get_attribute("data-label") == "tiny:1"
    asked = accept_dialogs(page)
    page.click(f".model-row[data-label='{label}'] button.danger")
    page.wait_for_selector(".flash.ok")
    assert asked and asked[0].startswith(f"Delete model {label} (demo0.zip")
    assert page.locator(".model-row").count() == 1
    screenshot(page, "models")
    page.set_input_files("#model-upload input[type=file]", str(_demo_zip(tmp_path / "back.zip")))  # back to the demo model
    page.click("#model-upload button")
    page.click(f".model-row[data-label='{label}'] button.primary")
    assert f"The device now runs {label}" in page.inner_text(".flash.ok")


def test_live_shows_the_annotated_stream_and_statistics(page: Any, device_url: str) -> None:
    page.goto(f"{device_url}/panel/live", wait_until="domcontentloaded")
    page.wait_for_function("document.querySelector('img#stream') && document.querySelector('img#stream').naturalWidth > 0")
    snapshot = requests.get(f"{device_url}/snapshot.jpg", timeout=5, cookies=_cookies(page))
    image = cv2.imdecode(np.frombuffer(snapshot.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (480, 640, 3)
    until(page, "Object.keys(window.charts.classColours).length === 3")
    project = page.evaluate("fetch('/panel/annotate').then(r => r.text())")
    colours = json.loads(re.search(r'<script id="annotate-data" type="application/json">(.*?)</script>', project, re.S).group(1))["colors"]
    assert page.evaluate("window.charts.classColours") == {name: colours[str(i)] for i, name in enumerate(CLASSES)}, "charts use the class colours"
    page.wait_for_timeout(1500)
    screenshot(page, "live", full_page=True)


def test_pages_run_under_the_content_security_policy(device_url: str, browser: Any) -> None:
    """Every page's own scripts, styles, images and fetches work with the CSP enforced (no violations)."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(20_000)
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    login(page, device_url)
    page.goto(f"{device_url}/panel/capture")
    until(page, "document.getElementById('preview').naturalWidth > 0")
    page.goto(f"{device_url}/panel/annotate")
    until(page, "!window.annotator || !window.annotator.loading")
    for path in ("/panel/projects/", "/panel/datasets/", "/panel/models/"):
        page.goto(f"{device_url}{path}")
    page.goto(f"{device_url}/panel/live", wait_until="domcontentloaded")
    until(page, "document.getElementById('stream').naturalWidth > 0")
    context.close()
    assert violations == []
