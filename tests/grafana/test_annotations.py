"""grafana.annotations through grafana-client, against a stand-in for Grafana's HTTP API.

Grafana itself cannot run on this machine. `FakeGrafana` below is a small HTTP server on loopback
that stands in for it: it accepts only what Grafana's documented annotations API accepts
(POST /api/annotations, JSON body {dashboardUID?, panelId?, time, timeEnd?, tags, text},
`Content-Type: application/json`, an Authorization header) and answers as Grafana does
({"message": "Annotation added", "id": N}; 401 for bad credentials, 400 for a bad body).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from grafana.annotations import (
    AnnotationError,
    GrafanaSettings,
    TrainingRun,
    mark_rollout,
    mark_training,
    settings_from_env,
)
from tests.grafana.fake_grafana import (
    PASSWORD,
    TOKEN,
    USER,
    FakeGrafana,
    running_grafana,
)


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    with running_grafana() as server:
        yield server


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
