"""A network camera stream (HTTP MJPEG through FFmpeg, the same VideoCapture path as rtsp://)
that breaks when its server dies and comes back when it restarts: another device's /stream.mjpg."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from device.sources.capture import Capture
from device.sources.registry import open_source
from tests.device.metrics.private_influx import free_port
from tests.device.runtime_helpers import wait_for

ROOT = Path(__file__).resolve().parents[3]


def _camera_server(port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPEHIVE_") or k.startswith("SCOPEHIVE_TEST_")}
    env["SCOPEHIVE_HOST"] = "127.0.0.1"
    return subprocess.Popen(
        [sys.executable, "-m", "device", "run", "--source", "synthetic://?width=160&height=120&fps=10",
         "--data-dir", str(data_dir), "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _up(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_stream_that_dies_and_returns_is_reconnected(tmp_path: Path) -> None:
    port = free_port()
    server = _camera_server(port, tmp_path / "a")
    events: list[str] = []
    capture = Capture(open_source(f"http://127.0.0.1:{port}/stream.mjpg"), backoff=(0.2, 0.5),
                      events=lambda kind, message: events.append(kind))
    try:
        assert wait_for(lambda: _up(port), timeout=60)
        capture.start()
        assert wait_for(lambda: capture.get(0.2) is not None, timeout=60)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        assert wait_for(lambda: capture.get(0.1) is None and capture.state == "reconnecting", timeout=30)
        time.sleep(0.5)  # a few refused reconnects with backoff
        server = _camera_server(port, tmp_path / "b")
        assert wait_for(lambda: capture.state == "ok", timeout=60)
        frame = capture.get(timeout=10)
        assert frame is not None and frame.image.shape == (120, 160, 3)
        assert events == ["source_lost", "source_restored"] and capture.reconnects >= 1
    finally:
        capture.stop()
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
