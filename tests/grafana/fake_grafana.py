"""A loopback stand-in for Grafana's annotations API (Grafana cannot run on this machine).

It accepts only what Grafana's documented annotations API accepts (POST /api/annotations, JSON
body {dashboardUID?, panelId?, time, timeEnd?, tags, text}, `Content-Type: application/json`, an
Authorization header) and answers as Grafana does ({"message": "Annotation added", "id": N}; 401
for bad credentials, 400 for a bad body).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from typing import Any

from tests.http_stubs import JSONHandler

TOKEN = "glsa_test_token"
USER, PASSWORD = "admin", "s3cret"
ALLOWED_KEYS = {"dashboardUID", "dashboardId", "panelId", "time", "timeEnd", "tags", "text"}


def body_problem(body: Any) -> str | None:
    """Why Grafana would reject this annotation body (None = valid)."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    if set(body) - ALLOWED_KEYS:
        return f"unknown fields {sorted(set(body) - ALLOWED_KEYS)}"
    if not isinstance(body.get("text"), str) or not body["text"]:
        return "text is required"
    if not isinstance(body.get("tags", []), list) or not all(isinstance(t, str) for t in body.get("tags", [])):
        return "tags must be a list of strings"
    for key in ("time", "timeEnd"):
        value = body.get(key)
        if value is not None and (not isinstance(value, int) or value < 1_500_000_000_000):
            return f"{key} must be epoch milliseconds"
    if body.get("timeEnd") is not None and body["timeEnd"] < (body.get("time") or 0):
        return "timeEnd before time"
    if body.get("dashboardUID") is not None and not isinstance(body["dashboardUID"], str):
        return "dashboardUID must be a string"
    return None


class FakeGrafana(ThreadingHTTPServer):
    """Loopback stand-in for Grafana's annotations API; keeps what it accepted."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.accepted: list[dict[str, Any]] = []
        self.auth_headers: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(JSONHandler):
    server: FakeGrafana

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        self.reply_json(status, payload)

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return header in (f"Bearer {TOKEN}", basic)

    def do_POST(self) -> None:
        if self.path != "/api/annotations":
            return self._answer(404, {"message": "Not found"})
        self.server.auth_headers.append(self.headers.get("Authorization", ""))
        if not self._authorised():
            return self._answer(401, {"message": "Unauthorized"})
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            return self._answer(400, {"message": "bad request data: expected application/json"})
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"null")
        problem = body_problem(body)
        if problem:
            return self._answer(400, {"message": f"bad request data: {problem}"})
        self.server.accepted.append(body)
        self._answer(200, {"message": "Annotation added", "id": len(self.server.accepted)})


@contextmanager
def running_grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
