"""Tracks in the experiment record: an experiment's start and stop end the open tracks, its
summary and report hold unique objects, speeds and crossings, equal to its `track` points."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from device.config import DeviceConfig
from device.experiments.report import html_report
from device.experiments.store import ExperimentRequest
from device.experiments.summary import summarise
from device.tracking.experiment import experiment_tracking
from tests.device.runtime_helpers import start_runtime, wait_for


def _track_points(data: Path) -> list[tuple[dict[str, str], dict[str, object]]]:
    with sqlite3.connect(data / "outbox.sqlite") as db:
        rows = db.execute("SELECT tags, fields FROM points WHERE measurement = 'track'").fetchall()
    return [(json.loads(tags), json.loads(fields)) for tags, fields in rows]


def test_experiment_summary_and_report_include_tracks(peak_bundle: Path, tmp_path: Path) -> None:
    config = DeviceConfig.model_validate({
        "source": "synthetic://?seed=4&width=320&height=240&motion=swim&swim_speed=2", "model": str(peak_bundle),
        "data_dir": str(tmp_path), "port": 0, "um_per_pixel": 0.5, "tracking": {"line": [160, 0, 160, 240]}})
    runtime, thread = start_runtime(config)
    try:
        recorder = runtime.parts.experiments
        assert recorder is not None
        assert wait_for(lambda: runtime.parts.publisher.processed >= 10)
        experiment = recorder.start(ExperimentRequest(name="swimmers"), {})
        start = runtime.parts.publisher.processed
        assert wait_for(lambda: runtime.parts.publisher.processed >= start + 60, timeout=60)
        recorder.stop()
        stopped = runtime.parts.publisher.processed
        assert wait_for(lambda: runtime.parts.publisher.processed >= stopped + 3)
    finally:
        runtime.stop()
        thread.join(timeout=10)
        runtime.shutdown()
    tracking = experiment_tracking(recorder.store.path, experiment.id, runtime.parts.track_log, runtime.parts.config.tracking)
    ours = [(tags, fields) for tags, fields in _track_points(tmp_path) if tags.get("experiment") == experiment.id]
    assert ours and tracking["unique_total"] == len(ours)
    per_class = {name: sum(1 for tags, _ in ours if tags["class"] == name) for name in tracking["classes"]}
    assert all(tracking["classes"][name]["unique"] == n for name, n in per_class.items())
    assert all(c["speed_unit"] == "µm/s" for c in tracking["classes"].values())
    assert all(c["speed_median"] > 0 for c in tracking["classes"].values() if c["unique"])  # every tracked class swims
    summary = {**summarise(recorder.store.get(experiment.id), recorder.store.frames(experiment.id),
                           recorder.store.objects(experiment.id)), "tracking": tracking}
    html = html_report(recorder.store.get(experiment.id), summary)
    assert "Objects over time (tracks)" in html and "unique objects" in html
