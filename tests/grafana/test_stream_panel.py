"""The Microscope dashboard's live-stream panel points at a real device's MJPEG stream.

A real device (`python -m device run`, synthetic microscope, web server on a free loopback port)
serves the stream; the panel's <img> URL, with its variables filled as a user would, must deliver
multipart JPEG frames, and its link must point at the same device.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from grafana import build
from grafana.queries import interpolate
from tests.device.bundles import peak_detector_bundle
from tests.grafana.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def device_port(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    bundle = peak_detector_bundle(tmp_path / "peaks")
    command = [sys.executable, "-m", "device", "run", "--source", "synthetic://?seed=2", "--model", str(bundle),
               "--device-name", "localhost", "--project", "stream-test", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                assert process.poll() is None, f"device exited: {process.stderr.read() if process.stderr else ''}"
                time.sleep(0.3)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


def panel_urls(port: int) -> tuple[str, str]:
    """The stream panel's <img> and <a> URLs with the variables a user would set for this device."""
    dashboard = json.loads((build.OUTPUT_DIR / "microscope.json").read_text(encoding="utf-8"))
    html = next(p for p in dashboard["panels"] if p["type"] == "text")["options"]["content"]
    values = {"stream_scheme": "http", "device": "localhost", "stream_domain": "", "stream_port": str(port), "stream_token": ""}
    filled = interpolate(html, values, "", "")
    (img,) = re.findall(r'<img src="([^"]+)"', filled)
    (link,) = re.findall(r'<a href="([^"]+)"', filled)
    return img, link


def test_stream_panel_shows_live_jpeg_frames(device_port: int) -> None:
    img, link = panel_urls(device_port)
    with requests.get(img, stream=True, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        received = b""
        for chunk in response.iter_content(chunk_size=65536):
            received += chunk
            if received.count(b"\xff\xd9") >= 2:  # two complete JPEG frames
                break
    assert received.count(b"\xff\xd8\xff") >= 2, "the stream delivered no JPEG frames"
    assert link == f"http://localhost:{device_port}/"  # the device's own page, beside its stream
