"""The metrics path against a real InfluxDB on loopback: schema, outage, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from device.config import DeviceConfig
from tests.conftest import Influx
from tests.device.metrics.private_influx import PrivateInflux
from tests.device.runtime_helpers import ready_runtime

ROOT = Path(__file__).resolve().parents[3]


def _device(args: list[str], **env: str) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SCOPEHIVE_") or k.startswith("SCOPEHIVE_TEST_")}
    clean.update(env)
    return subprocess.Popen([sys.executable, "-m", "device", "run", "--port", "0", *args], cwd=ROOT, env=clean,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(proc: subprocess.Popen[bytes], timeout: float = 90) -> str:
    out, _ = proc.communicate(timeout=timeout)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    return text


def test_points_land_with_the_documented_schema(influx: Influx, peak_bundle: Path, tmp_path: Path) -> None:
    config = DeviceConfig.model_validate({
        "device_name": "scope-7", "project": "yeast", "source": "synthetic://?seed=3&width=320&height=240",
        "model": str(peak_bundle), "um_per_pixel": 0.5, "data_dir": str(tmp_path), "port": 0,
        "influx": {"url": influx.url, "bucket": influx.database}})
    runtime = ready_runtime(config)
    assert runtime.run(max_frames=12) == 12
    runtime.shutdown()
    frames = influx.rows('SELECT * FROM "frame"')
    assert len(frames) == 12 and sorted(int(r["frame_index"]) for r in frames) == list(range(12))  # type: ignore[call-overload]
    first = frames[0]
    assert (first["device"], first["project"], first["model"], first["model_version"]) == ("scope-7", "yeast", "peaks", "1.0.0")
    for key in ("count", "fps", "inference_ms", "latency_ms", "dropped_frames", "score_mean", "score_min"):
        assert first[key] is not None, key
    stats = influx.rows('SELECT count("count") AS n FROM "class_stats" GROUP BY "class"')
    assert {(r["class"], r["n"]) for r in stats} == {("cell", 12), ("crystal", 12), ("debris", 12)}
    cell = influx.rows("SELECT * FROM \"class_stats\" WHERE \"class\" = 'cell' AND \"count\" > 0 LIMIT 1")[0]
    assert cell["width_um_mean"] == pytest.approx(float(cell["width_px_mean"]) * 0.5)  # type: ignore[arg-type]
    assert cell["area_um2_p90"] == pytest.approx(float(cell["area_px_p90"]) * 0.25)  # type: ignore[arg-type]
    status = influx.rows('SELECT * FROM "device_status"')[-1]
    assert status["model"] == "peaks" and status["backend"].startswith("onnx")  # type: ignore[union-attr]
    assert status["source_state"] == "ok" and status["outbox_dropped"] == 0 and status["uptime_s"] > 0  # type: ignore[operator]
    events = influx.rows('SELECT * FROM "device_event"')
    assert [e["kind"] for e in events] == ["started"]


def test_influxdb_outage_mid_run_loses_nothing(peak_bundle: Path, tmp_path: Path) -> None:
    server = PrivateInflux().start("outage")
    try:
        proc = _device(["--source", "synthetic://?width=320&height=240&fps=40", "--model", str(peak_bundle),
                        "--data-dir", str(tmp_path / "data"), "--influx-url", server.url, "--influx-bucket", "outage",
                        "--max-frames", "160"], SCOPEHIVE_INFLUX__FLUSH_INTERVAL_S="0.2")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not server.query('SELECT count("count") FROM "frame"', "outage"):
            time.sleep(0.1)  # the device is up and its points arrive
        server.stop_influxd()  # down for a while, mid-run
        time.sleep(2.0)
        server.start_influxd()
        log = _finish(proc)
        assert "unreachable, keeping points in the outbox" in log, log  # the outage really happened
        rows = server.query('SELECT "frame_index" FROM "frame"', "outage")[0]["values"]
        assert len(rows) == 160  # type: ignore[arg-type]
        classes = server.query('SELECT count("count") FROM "class_stats" GROUP BY "class"', "outage")
        assert [s["values"][0][1] for s in classes] == [160, 160, 160]  # type: ignore[index]
    finally:
        server.stop()


def test_sigkill_then_restart_loses_and_duplicates_nothing(influx: Influx, peak_bundle: Path, tmp_path: Path) -> None:
    args = ["--source", "synthetic://?width=320&height=240&fps=40", "--model", str(peak_bundle), "--data-dir",
            str(tmp_path), "--influx-url", influx.url, "--influx-bucket", influx.database]
    slow_sender = {"SCOPEHIVE_INFLUX__FLUSH_INTERVAL_S": "1.5", "SCOPEHIVE_INFLUX__BATCH_SIZE": "40"}
    proc = _device([*args, "--max-frames", "100000"], **slow_sender)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not influx.query('SELECT count("count") FROM "frame"'):
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
        bodies = db.execute("SELECT fields FROM points WHERE measurement = 'frame'").fetchall()
        pending = db.execute("SELECT count(*) FROM points WHERE sent = 0").fetchone()[0]
    recorded = sorted(json.loads(body)["frame_index"] for (body,) in bodies)
    assert len(recorded) > 20 and pending > 0, "the kill should catch points not yet sent"
    restart = time.time()
    time.sleep(0.05)
    _finish(_device([*args, "--max-frames", "5"], **slow_sender))
    before = influx.rows(f'SELECT "frame_index" FROM "frame" WHERE time < {int(restart * 1e9)}')
    indices = sorted(int(r["frame_index"]) for r in before)  # type: ignore[call-overload]
    assert indices == recorded, "every frame recorded before the kill arrives exactly once"
    after = influx.rows(f'SELECT "frame_index" FROM "frame" WHERE time >= {int(restart * 1e9)}')
    assert len(after) == 5
    per_class = influx.rows('SELECT count("count") AS n FROM "class_stats" GROUP BY "class"')
    assert {r["n"] for r in per_class} == {len(recorded) + 5}
