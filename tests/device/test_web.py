"""The production web server (waitress) with a real runtime: a bounded worker pool, stream and SSE
client caps that answer 503 at once, /healthz answering while viewers watch, a quiet access log
that never shows the stream token."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import requests

from device.runtime import Runtime
from device.web import WebServer, create_app
from device.web_settings import WebSettings
from tests.device.runtime_helpers import facade, wait_for

TOKEN = "grafana-stream-token-123"


def _serve(running: Runtime, settings: WebSettings) -> WebServer:
    config = running.parts.config.model_copy(update={"web": settings})
    return WebServer(create_app(config, facade(running), with_panel=False), "127.0.0.1", 0, settings).start()


@pytest.fixture
def server(running: Runtime) -> Iterator[WebServer]:
    web = _serve(running, WebSettings(max_stream_clients=2, max_sse_clients=2))
    yield web
    web.stop()


def _open(url: str, stack: ExitStack) -> requests.Response:
    response = stack.enter_context(requests.get(url, stream=True, timeout=10))
    if response.status_code == 200:
        assert response.raw.read(20)  # really streaming
    return response


@pytest.mark.parametrize(("path", "setting"), [("/stream.mjpg", "web.max_stream_clients"),
                                               ("/api/live?interval=0.1", "web.max_sse_clients")])
def test_clients_past_the_cap_get_a_clear_503_and_a_freed_place_is_reused(server: WebServer, path: str, setting: str) -> None:
    url = f"http://127.0.0.1:{server.port}{path}"
    with ExitStack() as stack:
        first, second = _open(url, stack), _open(url, stack)
        assert first.status_code == second.status_code == 200
        started = time.monotonic()
        refused = requests.get(url, timeout=5)
        assert refused.status_code == 503 and setting in refused.text and time.monotonic() - started < 2
        assert refused.headers["Retry-After"]
        assert requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=2).status_code == 200
        first.close()  # the viewer leaves: its place frees when the server notices
        assert wait_for(lambda: requests.get(url, stream=True, timeout=5).status_code == 200, timeout=10)


def test_many_clients_do_not_make_many_threads(server: WebServer) -> None:
    before = threading.active_count()
    url = f"http://127.0.0.1:{server.port}/stream.mjpg"
    with ExitStack() as stack:
        answers = [stack.enter_context(requests.get(url, stream=True, timeout=10)).status_code for _ in range(40)]
        assert answers.count(200) == 2 and answers.count(503) == 38
        latency = []
        for _ in range(10):
            started = time.perf_counter()
            assert requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=2).ok
            latency.append(time.perf_counter() - started)
        # waitress started its whole pool up front (2 + 2 + 8 workers); 40 clients add none
        assert threading.active_count() <= before + 1 and max(latency) < 1.0


def test_access_log_is_off_by_default_and_never_shows_the_token(running: Runtime, caplog: pytest.LogCaptureFixture,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPEHIVE_STREAM_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    for access_log in (False, True):
        caplog.clear()
        web = _serve(running, WebSettings(access_log=access_log))
        try:
            base = f"http://127.0.0.1:{web.port}"
            assert requests.get(f"{base}/snapshot.jpg?token={TOKEN}", timeout=5).status_code == 200
            assert requests.get(f"{base}/healthz", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).json()["camera"]
        finally:
            web.stop()
        lines = [r.getMessage() for r in caplog.records if r.name.startswith(("device.access", "waitress", "werkzeug"))]
        server_side = [r.getMessage() for r in caplog.records if not r.name.startswith("urllib3")]  # the test's own client
        assert server_side and all(TOKEN not in line for line in server_side)
        if access_log:
            assert any("GET /snapshot.jpg?token=*** 200" in line for line in lines), lines
        else:
            assert not [line for line in lines if "GET" in line], lines
