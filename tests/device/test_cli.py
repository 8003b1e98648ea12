"""`python -m device ...` as a user runs it: real processes, a real web server, signals."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import requests

from device.cli import main
from tests.device.metrics.private_influx import free_port

ROOT = Path(__file__).resolve().parents[2]


TOKEN = "cli-test-stream-token"
DETAILS = {"Authorization": f"Bearer {TOKEN}"}  # /healthz gives details only with a login or the stream token


def _env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SCOPEHIVE_") or k.startswith("SCOPEHIVE_TEST_")}
    return {**clean, "SCOPEHIVE_STREAM_TOKEN": TOKEN}


def _frames_in(outbox: Path) -> int:
    with sqlite3.connect(outbox) as db:
        return int(db.execute("SELECT count(*) FROM points WHERE measurement = 'frame'").fetchone()[0])


def test_max_frames_run_keeps_local_history(peak_bundle: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "device", "run", "--source", "synthetic://?width=320&height=240", "--model", str(peak_bundle),
         "--data-dir", str(tmp_path), "--port", "0", "--max-frames", "7"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "processed 7 frames" in result.stderr
    assert _frames_in(tmp_path / "outbox.sqlite") == 7


def test_serves_stream_and_health_then_stops_on_sigterm(peak_bundle: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**_env(), "SCOPEHIVE_SOURCE": "synthetic://?width=320&height=240&fps=20", "SCOPEHIVE_MODEL": str(peak_bundle),
           "SCOPEHIVE_DATA_DIR": str(tmp_path), "SCOPEHIVE_HOST": "127.0.0.1", "SCOPEHIVE_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "device", "run"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline:
            try:
                health = requests.get(f"{base}/healthz", timeout=2, headers=DETAILS)
                if health.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        assert health is not None and health.status_code == 200 and health.json()["model"]["name"] == "peaks"
        assert requests.get(f"{base}/healthz", timeout=5, headers=DETAILS).json()["camera"]["state"] == "ok"
        with requests.get(f"{base}/stream.mjpg?frames=2", stream=True, timeout=10) as stream:
            assert stream.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            assert stream.raw.read(100).startswith(b"--scopehiveframe")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()
    assert _frames_in(tmp_path / "outbox.sqlite") > 0


def test_bad_model_at_start_keeps_the_stream_up_and_health_says_why(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "device", "run", "--source", "synthetic://?width=160&height=120&fps=10",
                             "--model", str(tmp_path / "missing-bundle"), "--data-dir", str(tmp_path), "--port", str(port)],
                            cwd=ROOT, env={**_env(), "SCOPEHIVE_HOST": "127.0.0.1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2, headers=DETAILS)
                if response.json()["camera"]["frames"]:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert response.status_code == 503 and "no such model bundle" in response.json()["model"]["error"]
        assert requests.get(f"http://127.0.0.1:{port}/snapshot.jpg", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_unknown_env_var_stops_start_with_its_name(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "device", "run", "--port", "0", "--max-frames", "1"], cwd=ROOT,
                            env={**_env(), "SCOPEHIVE_SORCE": "/dev/video0"}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "SCOPEHIVE_SORCE" in result.stderr


def test_synthetic_package_command(tmp_path: Path) -> None:
    out = tmp_path / "pkg.zip"
    assert main(["synthetic-package", str(out), "--count", "3", "--seed", "2", "--width", "160", "--height", "120"]) == 0
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["image_count"] == 3 and manifest["classes"] == ["cell", "crystal", "debris"]


def test_backend_triton_is_offered_on_the_command_line() -> None:
    """`--backend triton` (the hive) is one of the choices `run --help` lists, and is accepted."""
    from device.cli import _parser

    shown = subprocess.run([sys.executable, "-m", "device", "run", "--help"], cwd=ROOT, env=_env(), capture_output=True,
                           text=True, timeout=60)
    assert "triton" in shown.stdout.split("--backend", 1)[1].split("--", 1)[0], shown.stdout
    assert _parser().parse_args(["run", "--backend", "triton"]).backend == "triton"
