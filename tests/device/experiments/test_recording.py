"""The running device records an experiment: tags on every frame point, `object` points, the
frame record equal to the outbox, defocused frames flagged without counts, start/stop events
written once, and a restart that continues the same experiment."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from device.config import DeviceConfig
from device.experiments.calibration import CalibrationProfile
from device.experiments.store import ExperimentRequest
from device.runtime import Runtime
from tests.device.runtime_helpers import facade, start_runtime, wait_for


def _config(bundle: Path, data: Path) -> DeviceConfig:
    return DeviceConfig.model_validate({
        "source": "synthetic://?seed=4&width=320&height=240&focus_drift=5&focus_period=20", "model": str(bundle),
        "data_dir": str(data), "port": 0, "device_name": "scope-7", "project": "lab", "max_frames": None})


def _points(data: Path, measurement: str) -> list[tuple[int, dict[str, str], dict[str, object]]]:
    with sqlite3.connect(data / "outbox.sqlite") as db:
        rows = db.execute("SELECT ts_us, tags, fields FROM points WHERE measurement = ? ORDER BY ts_us", (measurement,)).fetchall()
    return [(ts, json.loads(tags), json.loads(fields)) for ts, tags, fields in rows]


def _run_until(runtime: Runtime, frames: int) -> None:
    start = runtime.parts.publisher.processed
    assert wait_for(lambda: runtime.parts.publisher.processed >= start + frames, timeout=60)


def test_experiment_record_matches_the_outbox(peak_bundle: Path, tmp_path: Path) -> None:
    runtime, thread = start_runtime(_config(peak_bundle, tmp_path))
    try:
        recorder = runtime.parts.experiments
        assert recorder is not None
        recorder.store.save_profile(CalibrationProfile(name="20x", um_per_pixel=0.325))
        experiment = recorder.start(ExperimentRequest(name="drift run", profile="20x"), {})
        _run_until(runtime, 45)
        recorder.stop()
    finally:
        runtime.stop()
        thread.join(timeout=10)
        runtime.shutdown()
    frames = {ts: (tags, fields) for ts, tags, fields in _points(tmp_path, "frame") if tags.get("experiment") == experiment.id}
    record = {f["ts_us"]: f for f in recorder.store.frames(experiment.id)}
    assert frames and set(record) == set(frames)  # every experiment frame point is in the record, and only those
    statuses = {tags["analysed"] for tags, _ in frames.values()}
    assert {"ok", "out_of_focus"} <= statuses
    for ts, (tags, fields) in frames.items():
        if tags["analysed"] == "ok":
            assert fields["count"] == record[ts]["count"] and fields["fov_mm2"] == round(320 * 240 * 0.325**2 / 1e6, 6)
        else:  # never a fake zero: no count in the point, none in the record
            assert "count" not in fields and record[ts]["count"] is None and "focus" in fields
    objects = [p for p in _points(tmp_path, "object") if p[1].get("experiment") == experiment.id]
    assert len(objects) == sum(r["count"] or 0 for r in record.values()) == len(list(recorder.store.objects(experiment.id)))
    assert all(abs(float(str(o[2]["width_um"])) - float(str(o[2]["width_px"])) * 0.325) < 0.01 for o in objects)
    events = [(tags["kind"], tags.get("experiment")) for _, tags, _ in _points(tmp_path, "device_event")]
    assert events.count(("experiment_started", experiment.id)) == 1 and events.count(("experiment_stopped", experiment.id)) == 1


def test_restart_continues_the_same_experiment(peak_bundle: Path, tmp_path: Path) -> None:
    runtime, thread = start_runtime(_config(peak_bundle, tmp_path))
    try:
        assert runtime.parts.experiments is not None
        experiment = runtime.parts.experiments.start(ExperimentRequest(name="long run"), {})
        _run_until(runtime, 5)
    finally:
        runtime.stop()
        thread.join(timeout=10)
        runtime.shutdown()
    runtime, thread = start_runtime(_config(peak_bundle, tmp_path))  # the device comes back
    try:
        assert runtime.parts.experiments is not None and runtime.parts.experiments.active is not None
        assert runtime.parts.experiments.active.id == experiment.id
        assert facade(runtime).live_stats()["experiment"]["id"] == experiment.id
        _run_until(runtime, 5)
    finally:
        runtime.stop()
        thread.join(timeout=10)
        runtime.shutdown()
    tagged = [tags.get("experiment") for _, tags, _ in _points(tmp_path, "frame")]
    first = tagged.index(experiment.id)
    assert set(tagged[first:]) == {experiment.id}  # one experiment, before and after the restart
    events = [tags["kind"] for _, tags, _ in _points(tmp_path, "device_event")]
    assert events.count("experiment_started") == 1 and "experiment_stopped" not in events
