"""The test hive server's start-up wait (tests/device/hive/server.py) against the order in which a
real `trainer serve` comes up, replayed by a scripted HTTP server. Probed on loopback: the server
reads ready, then not, then ready with only the tensor model loaded (its JPEG entry point still
loading), then not ready, and only then ready for good. A wait that returned in that third state
let a CI run's next health check read 400."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.device.hive.server import HiveServer

MODEL = "cells.1"
STEP_S = 0.5
# (server, tensor model, JPEG model) ready, one state per STEP_S, the last one for good
TIMELINE = [(True, False, False), (False, False, False), (True, True, False), (False, True, False), (True, True, True)]


class _Scripted(BaseHTTPRequestHandler):
    started = 0.0

    def do_GET(self) -> None:
        step = min(int((time.monotonic() - self.started) / STEP_S), len(TIMELINE) - 1)
        server, tensor, jpeg = TIMELINE[step]
        ready = {"/v2/health/ready": server, f"/v2/models/{MODEL}/ready": tensor,
                 f"/v2/models/{MODEL}_jpeg/ready": jpeg}.get(self.path, False)
        self.send_response(200 if ready else 400)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def scripted_url() -> Iterator[str]:
    _Scripted.started = time.monotonic()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_wait_returns_only_when_the_server_and_both_entry_points_are_ready(scripted_url: str, tmp_path: Path) -> None:
    server = HiveServer([], tmp_path / "hive.log")
    server.url = scripted_url
    server.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # stands for trainer serve
    try:
        server.wait_ready([MODEL], timeout=10)
        assert requests.get(f"{scripted_url}/v2/models/{MODEL}_jpeg/ready", timeout=2).status_code == 200
        assert requests.get(f"{scripted_url}/v2/health/ready", timeout=2).status_code == 200
    finally:
        server.process.kill()
        server.process.wait()
