"""What the browser tests share: the real `python -m device run` on a free port, Debian's Chromium
through Playwright, logging in, and page screenshots kept under artifacts/screenshots/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import ARTIFACTS, stop_process

PASSWORD = "microscope lab pass"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = Path(__file__).resolve().parents[3]
SHOTS = ARTIFACTS / "screenshots"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_device(data: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """The device with its panel, on the synthetic microscope, until the block ends; yields its URL."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SCOPEHIVE_") or k.startswith("SCOPEHIVE_TEST_")}
    clean.update({"SCOPEHIVE_PANEL_PASSWORD": PASSWORD, **(env or {})})
    log = (data / "device.log").open("wb")
    cmd = [sys.executable, "-m", "device", "run", "--source", "synthetic://?seed=3&width=640&height=480&fps=4",
           "--data-dir", str(data), "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, env=clean, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
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
        log.close()


@contextmanager
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make system-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def login(page: Any, url: str) -> None:
    page.goto(f"{url}/panel/projects/")
    if "/panel/login" in page.url:
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/panel/projects/")


def screenshot(page: Any, name: str, full_page: bool = False) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def accept_dialogs(page: Any) -> list[str]:
    """Every confirm() is accepted; the list collects what each asked (the tests read it)."""
    asked: list[str] = []

    def _on(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", _on)
    return asked


def drag(page: Any, x0: float, y0: float, x1: float, y1: float, steps: int = 4, shift: bool = False) -> None:
    if shift:
        page.keyboard.down("Shift")
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=steps)
    page.mouse.move(x1, y1, steps=steps)
    page.mouse.up()
    if shift:
        page.keyboard.up("Shift")


def until(page: Any, expression: str, timeout_s: float = 20.0) -> None:
    """Poll through DevTools (not subject to the page's CSP) until `expression` is true."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.1)


def wait_saved(page: Any, revision: int) -> None:
    page.wait_for_function(f"window.annotator && window.annotator.doc.revision === {revision} && !window.annotator.saving && !window.annotator.dirty")
