"""A SIGKILL mid-experiment: the experiment record holds every frame the outbox holds (issue 21, item 9).

Before the fix the recorder committed its rows once a second, so a kill lost up to a second of
the record (649 CSV rows for 650 frame points). Now each frame's rows are committed before its
points reach the outbox, so whatever the outbox kept, the record kept too.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SCOPEHIVE_") or k.startswith("SCOPEHIVE_TEST_")}


def _experiment_frames_in_outbox(data: Path, experiment: str) -> set[int]:
    if not (data / "outbox.sqlite").exists():
        return set()
    with sqlite3.connect(f"file:{data / 'outbox.sqlite'}?mode=ro", uri=True, timeout=10) as db:
        try:
            rows = db.execute("SELECT ts_us, tags FROM points WHERE measurement = 'frame'").fetchall()
        except sqlite3.OperationalError:  # the device has not made its tables yet
            return set()
    return {ts for ts, tags in rows if json.loads(tags).get("experiment") == experiment}


def test_a_sigkill_mid_experiment_leaves_the_record_holding_every_outbox_frame(peak_bundle: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    started = subprocess.run([sys.executable, "-m", "device", "experiment", "--data-dir", str(data), "start", "kill run"],
                             cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    experiment = json.loads(started.stdout)["id"]
    proc = subprocess.Popen([sys.executable, "-m", "device", "run", "--port", "0", "--data-dir", str(data),
                             "--source", "synthetic://?width=320&height=240&fps=60", "--model", str(peak_bundle)],
                            cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while len(_experiment_frames_in_outbox(data, experiment)) < 120:
            assert proc.poll() is None, "the device exited before the kill"
            assert time.monotonic() < deadline, "the device never recorded 120 experiment frames"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # mid-run: the recorder's writer thread is somewhere in its second
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    in_outbox = _experiment_frames_in_outbox(data, experiment)
    with sqlite3.connect(data / "experiments.sqlite") as db:
        in_record = {ts for (ts,) in db.execute("SELECT ts_us FROM frames WHERE experiment = ?", (experiment,))}
    assert len(in_outbox) >= 120
    missing = sorted(in_outbox - in_record)
    assert not missing, f"{len(missing)} of {len(in_outbox)} outbox frames are not in the record"
    exported = subprocess.run([sys.executable, "-m", "device", "experiment", "--data-dir", str(data), "export", experiment,
                               "--out", str(tmp_path / "out")], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert exported.returncode == 0, exported.stderr
    with open(tmp_path / "out" / f"{experiment}-frames.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(in_record) >= len(in_outbox)  # the CSV a scientist gets holds every outbox frame
