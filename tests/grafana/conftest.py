"""A session-wide InfluxDB database filled by the REAL device loop on two simulated microscopes.

`python -m device run` processes 200 synthetic frames per device (a few seconds each) and writes
through its outbox and InfluxDB v2 write API (the nginx proxy in front of the test InfluxDB), exactly
as on a lab box. scope-a is calibrated (µm fields) and runs peaks 1.0.0; scope-b runs peaks-b 2.0.0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import INFLUX_V1, INFLUX_V2, Influx, create_database, drop_database
from tests.device.bundles import peak_detector_bundle
from tests.device.hive.server import HiveServer, hive_available

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "grafana-test"
FRAMES = 200


@dataclass(frozen=True)
class Fleet:
    """What the dashboards should find: the database, its project, devices, classes and models."""

    influx: Influx
    project: str
    devices: tuple[str, ...]
    classes: tuple[str, ...]
    model: str  # of devices[0]
    model_version: str
    experiment: str = ""  # recorded on devices[0] (with a focus drift, so some frames are excluded)
    experiment_store: Path | None = None  # devices[0]'s own record of it
    hive: bool = False  # scope-b ran its model on a real hive server (needs `make hive-env`)


def start_experiment(data_dir: Path, name: str) -> str:
    """Start an experiment in a device's store with the CLI (before it runs: the device picks it up)."""
    command = [sys.executable, "-m", "device", "experiment", "--data-dir", str(data_dir), "start", name, "--objective", "10x"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith("SCOPEHIVE_")})
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["id"])


def run_device(database: str, name: str, bundle: Path, data_dir: Path, extra_env: dict[str, str],
               source: str = "synthetic://?seed=1") -> None:
    """One real device run: synthetic microscope -> model -> outbox -> InfluxDB."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPEHIVE_")}
    env.update({"SCOPEHIVE_STATUS_INTERVAL_S": "0.2", **extra_env})
    command = [
        sys.executable, "-m", "device", "run", "--source", source, "--model", str(bundle),
        "--max-frames", str(FRAMES), "--influx-url", INFLUX_V2, "--influx-bucket", database,
        "--device-name", name, "--project", PROJECT, "--port", "0", "--data-dir", str(data_dir),
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"device run failed ({done.returncode}):\n{done.stderr[-3000:]}"


def add_temperatures_where_unreadable(influx: Influx, devices: tuple[str, ...]) -> None:
    """This test machine has no thermal sensors, so the loop writes no cpu_temp_c/gpu_temp_c.

    To show the temperature panels fill when a device does report them (a Jetson does), repeat
    each device's newest heartbeat, as written by the loop, with the two temperature fields added.
    """
    types = {row["fieldKey"]: row["fieldType"] for row in influx.rows('SHOW FIELD KEYS FROM "device_status"')}
    if {"cpu_temp_c", "gpu_temp_c"} <= set(types):
        return
    repeat_heartbeats(influx, devices, ",cpu_temp_c=48.5,gpu_temp_c=44.0")


def repeat_heartbeats(influx: Influx, devices: tuple[str, ...], extra: str = "", now: bool = False) -> None:
    """Each device's newest heartbeat again, 1 µs later (or now: a device still online when a
    check runs minutes after the fixture's devices stopped, as under a parallel test run)."""
    types = {row["fieldKey"]: row["fieldType"] for row in influx.rows('SHOW FIELD KEYS FROM "device_status"')}
    encode = {"string": lambda v: f'"{v}"', "integer": lambda v: f"{int(v)}i", "float": lambda v: repr(float(v)), "boolean": str}
    lines = []
    for device in devices:
        (row,) = influx.rows(f"SELECT * FROM \"device_status\" WHERE \"device\" = '{device}' ORDER BY time DESC LIMIT 1")
        fields = {k: v for k, v in row.items() if k not in ("time", "device", "project", "experiment") and v is not None}
        encoded = ",".join(f"{k}={encode[types[k]](v)}" for k, v in fields.items()) + extra
        experiment = f",experiment={row['experiment']}" if row.get("experiment") else ""  # a tag while one runs
        when = time.time_ns() if now else int(row["time"]) + 1000
        lines.append(f"device_status,device={device}{experiment},project={PROJECT} {encoded} {when}")
    requests.post(f"{INFLUX_V1}/write", params={"db": influx.database}, data="\n".join(lines).encode(), timeout=10).raise_for_status()


def review_spot_checks(influx: Influx, device: str, data_dir: Path) -> int:
    """A person reviews the spot checks a device's inbox kept (accepting each, fixing every other one
    by one object) and the panel writes `count_qc`: the same agreement and points as
    device/panel/inbox (a headless run has no panel to click in). Returns the spot checks reviewed."""
    from device.inbox.qc import SpotPair, agreements, qc_points
    from device.inbox.store import InboxStore
    from device.panel.inbox.spotchecks import spot_check_of

    pairs, labels = [], {}
    for i, item in enumerate(InboxStore(data_dir / "inbox", 10_000, 10**12).items()):
        spot = spot_check_of(item.record)
        for model in spot.models if spot is not None else []:
            labels[f"{model.name}:{model.version}"] = (model.name, model.version)
            pairs += [SpotPair(f"{model.name}:{model.version}", cls, n, max(0, n - i % 2), item.id) for cls, n in model.counts.items()]
    lines = [p.to_line() for label, rows in agreements(pairs).items()
             for p in qc_points(*labels[label], rows, {"device": device, "project": PROJECT}, time.time_ns() // 1000)]
    requests.post(f"{INFLUX_V1}/write", params={"db": influx.database, "precision": "u"}, data="\n".join(lines).encode(),
                  timeout=10).raise_for_status()
    return len({p.frame for p in pairs})


@pytest.fixture(scope="session")
def fleet_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    influx = create_database("test_grafana")
    name = influx.database
    work = tmp_path_factory.mktemp("grafana-fleet")
    bundle_a = peak_detector_bundle(work / "peaks")
    bundle_b = peak_detector_bundle(work / "peaks-b", version="2.0.0", name="peaks-b")
    # both count crossings of a line across the field in a 1.5 µL/min flow (the tracking panels)
    env = {"SCOPEHIVE_UM_PER_PIXEL": "0.65", "SCOPEHIVE_TRACKING__LINE": "640,0,640,960", "SCOPEHIVE_TRACKING__FLOW_RATE_UL_MIN": "1.5",
           "SCOPEHIVE_INBOX__SPOT_SHARE": "0.2", "SCOPEHIVE_INBOX__MIN_INTERVAL_S": "0", "SCOPEHIVE_INBOX__SEED": "3"}
    experiment = start_experiment(work / "a", "grafana check")  # recorded on scope-a, through a focus drift
    run_device(name, "scope-a", bundle_a, work / "a", env, "synthetic://?seed=1&focus_drift=5&focus_period=40")
    server = hive_server(bundle_b, work / "hive.log")  # scope-b's model runs on it (the Fleet's hive row)
    hive_env = {"SCOPEHIVE_BACKEND": "triton", "SCOPEHIVE_HIVE__ENDPOINTS": server.url} if server else {}
    try:
        run_device(name, "scope-b", bundle_b, work / "b", {**env, **hive_env})
    finally:
        if server is not None:
            server.kill()
    devices = ("scope-a", "scope-b")
    add_temperatures_where_unreadable(influx, devices)
    for device, folder in zip(devices, ("a", "b"), strict=True):
        assert review_spot_checks(influx, device, work / folder) >= 2  # the Count QC table's rows
    time.sleep(0.1)
    yield Fleet(influx, PROJECT, devices, ("cell", "crystal", "debris"), "peaks", "1.0.0", experiment,
                work / "a" / "experiments.sqlite", server is not None)
    drop_database(influx)


def hive_server(bundle: Path, log: Path) -> HiveServer | None:
    """A real Triton (PyTriton) serving `bundle`, or None where the hive environment is not set up."""
    from device.hive.names import triton_model_name
    from device.models.bundle import load_bundle

    if not hive_available():
        return None
    name = triton_model_name(load_bundle(bundle).card)
    return HiveServer([bundle], log).start([name, name + "_jpeg"])
