"""Experiment start/stop as Grafana annotations (grafana-client against the loopback stand-in for
Grafana's API used by the trainer's marks): a point at the start, the whole span at the stop,
tagged as the dashboards query; a refused token is logged, never raised into the device."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.experiments.grafana_marks import (
    TAG_APP,
    TAG_EXPERIMENT,
    GrafanaMarkSettings,
    mark_in_background,
)
from device.experiments.recorder import ExperimentRecorder
from device.experiments.store import ExperimentRequest, ExperimentStore
from grafana import tags
from tests.grafana.test_annotations import TOKEN, FakeGrafana, grafana  # noqa: F401 (fixture)


def test_tags_are_the_dashboards_tags() -> None:
    assert (TAG_APP, TAG_EXPERIMENT) == (tags.TAG_APP, tags.TAG_EXPERIMENT)


def test_start_and_stop_are_annotated_once(grafana: FakeGrafana, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("SCOPEHIVE_GRAFANA_TOKEN", TOKEN)
    settings = GrafanaMarkSettings(url=grafana.url)
    threads = []
    recorder = ExperimentRecorder(ExperimentStore(tmp_path / "e.sqlite"), "scope-1", "lab", lambda *a: None,
                                  lambda e, which: threads.append(mark_in_background(settings, e, which)))
    experiment = recorder.start(ExperimentRequest(name="Blood smear", sample="S-3", objective="40x"), {})
    recorder.stop()
    recorder.announce()  # nothing left to mark: no duplicates
    for thread in threads:
        thread.join(timeout=10)
    start, stop = sorted(grafana.accepted, key=lambda body: body.get("timeEnd") is not None)
    assert start.get("timeEnd") is None and start["time"] == int(experiment.started * 1000)
    assert stop["timeEnd"] >= stop["time"] == start["time"]
    for body in (start, stop):
        assert {"scopehive", "experiment", f"experiment:{experiment.id}", "device:scope-1", "project:lab"} <= set(body["tags"])
        assert "Blood smear" in body["text"] and "sample S-3" in body["text"]


def test_refused_token_is_logged_not_raised(grafana: FakeGrafana, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SCOPEHIVE_GRAFANA_TOKEN", "wrong")
    store = ExperimentStore(tmp_path / "e.sqlite")
    experiment = store.start(ExperimentRequest(name="x"), "d", "p", {})
    thread = mark_in_background(GrafanaMarkSettings(url=grafana.url), experiment, "started")
    assert thread is not None
    thread.join(timeout=10)
    assert grafana.accepted == [] and "no Grafana annotation" in caplog.text
    assert mark_in_background(GrafanaMarkSettings(url=""), experiment, "started") is None  # not configured: nothing
