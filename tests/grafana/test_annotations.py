"""grafana.annotations through grafana-client, against a stand-in for Grafana's HTTP API.

Grafana itself cannot run on this machine. `FakeGrafana` below is a small HTTP server on loopback
that stands in for it: it accepts only what Grafana's documented annotations API accepts
(POST /api/annotations, JSON body {dashboardUID?, panelId?, time, timeEnd?, tags, text},
`Content-Type: application/json`, an Authorization header) and answers as Grafana does
({"message": "Annotation added", "id": N}; 401 for bad credentials, 400 for a bad body).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from grafana.annotations import (
    AnnotationError,
    GrafanaSettings,
    TrainingRun,
    mark_rollout,
    mark_training,
    settings_from_env,
)
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


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_rollout_is_tagged_for_the_dashboards(grafana: FakeGrafana) -> None:
    settings = GrafanaSettings(url=grafana.url, token=TOKEN)
    before = int(time.time() * 1000)
    assert mark_rollout(settings, "lab-hive", "cells", "2026.11.21-1", ["scope-a", "scope-b"]) == 1
    (body,) = grafana.accepted
    assert {"scopehive", "rollout", "fleet:lab-hive", "model:cells", "version:2026.11.21-1", "device:scope-a", "device:scope-b"} == set(body["tags"])
    assert "cells 2026.11.21-1" in body["text"] and "lab-hive" in body["text"]
    assert before <= body["time"] <= int(time.time() * 1000)
    assert grafana.auth_headers == [f"Bearer {TOKEN}"]


def test_training_run_is_a_region_with_its_map(grafana: FakeGrafana) -> None:
    settings = GrafanaSettings(url=grafana.url, user=USER, password=PASSWORD)
    finished = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
    run = TrainingRun(project="plankton", model="cells", version="7", map50=0.9123, started=finished - timedelta(minutes=30), finished=finished)
    assert mark_training(settings, run) == 1
    (body,) = grafana.accepted
    assert body["timeEnd"] - body["time"] == 30 * 60 * 1000
    assert "mAP@0.5 0.912" in body["text"]
    assert {"scopehive", "training", "project:plankton", "model:cells", "version:7"} == set(body["tags"])
    assert grafana.auth_headers[0].startswith("Basic ")


def test_ids_follow_grafanas_answers(grafana: FakeGrafana) -> None:
    settings = GrafanaSettings(url=grafana.url, token=TOKEN)
    ids = [mark_rollout(settings, "f", "m", str(v)) for v in range(3)]
    assert ids == [1, 2, 3] and len(grafana.accepted) == 3


def test_bad_token_says_which_variable_to_fix(grafana: FakeGrafana) -> None:
    with pytest.raises(AnnotationError, match="GRAFANA_TOKEN"):
        mark_rollout(GrafanaSettings(url=grafana.url, token="wrong"), "f", "m", "1")
    assert grafana.accepted == []


def test_unreachable_grafana_names_the_url() -> None:
    server = FakeGrafana()  # bound, then closed: nothing listens on that port any more
    url = server.url
    server.server_close()
    with pytest.raises(AnnotationError, match="GRAFANA_URL"):
        mark_rollout(GrafanaSettings(url=url, token=TOKEN, timeout_s=2), "f", "m", "1")


def test_naive_time_is_refused(grafana: FakeGrafana) -> None:
    run = TrainingRun(project="p", model="m", version="1", map50=0.5, finished=datetime(2026, 1, 1))
    with pytest.raises(AnnotationError, match="time zone"):
        mark_training(GrafanaSettings(url=grafana.url, token=TOKEN), run)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"GRAFANA_URL": "http://g:3000", "GRAFANA_TOKEN": "t"}, GrafanaSettings(url="http://g:3000", token="t")),
        ({"GRAFANA_URL": "http://g:3000", "GRAFANA_USER": "u", "GRAFANA_PASSWORD": "p"}, GrafanaSettings(url="http://g:3000", user="u", password="p")),
    ],
)
def test_settings_from_env(environ: dict[str, str], expected: GrafanaSettings | None) -> None:
    assert settings_from_env(environ) == expected


def test_url_without_credentials_is_an_error() -> None:
    with pytest.raises(AnnotationError, match="GRAFANA_TOKEN"):
        settings_from_env({"GRAFANA_URL": "http://g:3000"})
