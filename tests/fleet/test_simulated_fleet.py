"""A simulated fleet on loopback: three real device processes of different declared device types,
one S3 object store (moto), the real InfluxDB, and a stand-in balena API (balenaCloud can't be
reached from here; see fake_balena.py). A rollout reaches the canary first, then the rest; each
device reports the new version in InfluxDB, without a restart; a rollback brings all three back.
Without TensorRT on this machine the devices run the model on ONNX Runtime and say so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from device.storage import open_storage
from tests.conftest import Influx
from tests.device.bundles import peak_detector_bundle
from tests.fleet.fake_balena import FakeBalena
from tests.fleet.publishing import publish_folder
from trainer import cli

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
FLEET = "lab/hive"
DEVICES = [  # name, balena device type, uuid
    ("nano-1", "jetson-nano", "a1" * 16),
    ("nx-1", "jetson-xavier-nx-devkit", "b2" * 16),
    ("pc-1", "genericx86-64-ext", "c3" * 16),
]


@dataclass
class Hive:
    api: FakeBalena
    api_url: str
    store_url: str
    ids: dict[str, int]
    influx: Influx
    v2_bundle: Path
    log_dir: Path

    def logs(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text()


def _wait(what: str, check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.3)


def _device_env(hive_dirs: Path, name: str, dtype: str, uuid: str, key: str, model: Path,
                urls: dict[str, str], influx: Influx) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCOPEHIVE_", "BALENA_"))}
    env.update({
        "PYTHONPATH": str(ROOT),
        "SCOPEHIVE_DEVICE_NAME": name,
        "SCOPEHIVE_PROJECT": "fleet-test",
        "SCOPEHIVE_SOURCE": "synthetic://?seed=3&width=320&height=240&fps=4",
        "SCOPEHIVE_MODEL": str(model),
        "SCOPEHIVE_DATA_DIR": str(hive_dirs / name),
        "SCOPEHIVE_PORT": "0",
        "SCOPEHIVE_STATUS_INTERVAL_S": "1",
        "SCOPEHIVE_INFLUX__URL": influx.url,
        "SCOPEHIVE_INFLUX__BUCKET": influx.database,
        "SCOPEHIVE_FLEET__ENABLED": "true",
        "SCOPEHIVE_FLEET__DEVICE_TYPE": dtype,
        "SCOPEHIVE_FLEET__STORE": urls["store"],
        "SCOPEHIVE_FLEET__POLL_INTERVAL_S": "0.5",
        "SCOPEHIVE_S3_ACCESS_KEY": "fleet-test",
        "SCOPEHIVE_S3_SECRET_KEY": "fleet-test-secret",
        "BALENA_API_URL": urls["api"],
        "BALENA_API_KEY": key,
        "BALENA_DEVICE_UUID": uuid,
    })
    return env


@pytest.fixture
def hive(tmp_path: Path, s3_endpoint: str, influx: Influx, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hive]:
    monkeypatch.setenv("SCOPEHIVE_S3_ACCESS_KEY", "fleet-test")
    monkeypatch.setenv("SCOPEHIVE_S3_SECRET_KEY", "fleet-test-secret")
    store_url = f"s3://scopehive?endpoint={s3_endpoint}&secure=0"
    v1 = peak_detector_bundle(tmp_path / "bundles" / "v1", version="1.0.0")
    v2 = peak_detector_bundle(tmp_path / "bundles" / "v2", version="2.0.0")  # same ONNX, new version
    publish_folder(open_storage(store_url), v1)  # v1 was published by an earlier rollout
    api = FakeBalena()
    fleet_id = api.add_fleet(FLEET)
    ids = {name: api.add_device(fleet_id, uuid, name, dtype, key=f"key-{name}") for name, dtype, uuid in DEVICES}
    api_url = api.start()
    urls = {"api": api_url, "store": store_url}
    procs = []
    for name, dtype, uuid in DEVICES:
        env = _device_env(tmp_path / "devices", name, dtype, uuid, f"key-{name}", v1, urls, influx)
        log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        procs.append((subprocess.Popen([sys.executable, "-m", "device", "run"], cwd=ROOT, env=env,
                                       stdout=log, stderr=subprocess.STDOUT), log))
    try:
        yield Hive(api, api_url, store_url, ids, influx, v2, tmp_path)
    finally:
        for proc, _log in procs:
            proc.terminate()
        for proc, log in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
        api.stop()
        for name, _, _ in DEVICES:
            print(f"--- {name} log ---\n" + (tmp_path / f"{name}.log").read_text()[-3000:])


def _running(hive: Hive, name: str) -> str | None:
    return hive.api.tag(hive.ids[name], "scopehive.model.running")


def _status(hive: Hive) -> dict[str, dict[str, Any]]:
    rows = hive.influx.rows('SELECT last("model_version") AS version, last("backend") AS backend '
                           'FROM "device_status" GROUP BY "device"')
    return {str(row["device"]): row for row in rows}


def _switch_times(hive: Hive, version: str) -> dict[str, int]:
    """When each device logged `model_switched ... -> peaks:<version> on <backend>` (ns)."""
    rows = hive.influx.rows("SELECT \"message\" FROM \"device_event\" WHERE \"kind\" = 'model_switched' GROUP BY \"device\"")
    return {str(row["device"]): int(str(row["time"])) for row in rows if f"-> peaks:{version} " in str(row["message"])}


def _cli(hive: Hive, *args: str) -> int:
    return cli.main([*args, "--fleet", FLEET, "--store", hive.store_url, "--balena-api-url", hive.api_url,
                     "--wait-s", "90", "--poll-s", "0.3"])


def test_rollout_reaches_canary_first_then_all_and_rollback_returns_all(hive: Hive, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BALENA_API_KEY", hive.api.user_token)
    monkeypatch.delenv("GRAFANA_URL", raising=False)
    names = [name for name, _, _ in DEVICES]
    _wait("every device to report its configured model on its tags",
          lambda: all(_running(hive, n) == "peaks:1.0.0" for n in names))

    assert _cli(hive, "rollout", str(hive.v2_bundle), "--canary", "1") == 0

    assert all(_running(hive, n) == "peaks:2.0.0" for n in names)
    _wait("device_status to show 2.0.0 on every device in InfluxDB",
          lambda: all(row["version"] == "2.0.0" for row in _status(hive).values()) and len(_status(hive)) == 3)
    status = _status(hive)
    # No TensorRT here: every device runs the new model on ONNX Runtime and says so (metrics + log).
    assert all(str(row["backend"]).startswith("onnx") for row in status.values())
    for name, dtype, _ in DEVICES:
        assert f"{dtype} without TensorRT/CUDA here: models run on the CPU backend (ONNX Runtime)" in hive.logs(name)
    switched = _switch_times(hive, "2.0.0")
    assert sorted(switched) == sorted(names)
    canary = min(switched, key=lambda n: switched[n])
    assert canary == "nano-1"  # canaries are chosen by name among online devices
    assert all(switched[canary] < switched[n] for n in names if n != canary)
    # The canary switched before anyone else was even assigned the new model.
    log = hive.api.requests
    canary_id = hive.ids["nano-1"]
    canary_ack = next(i for i, (method, path, body) in enumerate(log) if method == "PATCH"
                      and path.endswith(f"device_tag(device={canary_id},tag_key='scopehive.model.running')")
                      and body == {"value": "peaks:2.0.0"})
    others_assigned = [i for i, (method, path, body) in enumerate(log) if method == "POST" and isinstance(body, dict)
                       and body.get("tag_key") == "scopehive.model" and body.get("device") != canary_id]
    assert len(others_assigned) == 2 and canary_ack < min(others_assigned)

    assert _cli(hive, "rollback") == 0

    assert all(_running(hive, n) == "peaks:1.0.0" for n in names)
    _wait("device_status to show 1.0.0 again on every device",
          lambda: all(row["version"] == "1.0.0" for row in _status(hive).values()))
    assert sorted(_switch_times(hive, "1.0.0")) == sorted(names)
