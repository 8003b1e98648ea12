"""frame_index restarts at 0 on every start; the per-start run_id keeps (run_id, frame_index) unique."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from device.config import DeviceConfig
from tests.device.runtime_helpers import ready_runtime


def _start_and_run(config: DeviceConfig, frames: int) -> str:
    runtime = ready_runtime(config)
    assert runtime.run(max_frames=frames) == frames
    runtime.shutdown()
    return runtime.parts.run_id


def test_two_starts_write_two_run_ids_and_no_ambiguous_frame(peak_bundle: Path, tmp_path: Path) -> None:
    config = DeviceConfig.model_validate({"source": "synthetic://?seed=2&width=320&height=240", "model": str(peak_bundle),
                                          "data_dir": str(tmp_path), "port": 0})
    first, second = _start_and_run(config, 5), _start_and_run(config, 5)
    assert first != second
    with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
        frames = [json.loads(f) for (f,) in db.execute("SELECT fields FROM points WHERE measurement = 'frame'")]
        status = [json.loads(f) for (f,) in db.execute("SELECT fields FROM points WHERE measurement = 'device_status'")]
        started = [json.loads(f)["message"] for (f,) in db.execute(
            "SELECT fields FROM points WHERE measurement = 'device_event' AND tags LIKE '%\"kind\":\"started\"%'")]
    keys = [(f["run_id"], f["frame_index"]) for f in frames]
    assert sorted(f["frame_index"] for f in frames) == sorted([*range(5), *range(5)])  # the index repeats ...
    assert len(set(keys)) == 10 and {k[0] for k in keys} == {first, second}  # ... the pair does not
    assert {s["run_id"] for s in status} == {first, second}
    assert [m.split(",")[0] for m in started] == [f"run {first}", f"run {second}"]
