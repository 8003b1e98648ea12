"""Shared fixtures: builders for Detections, a real InfluxDB on loopback, synthetic packages."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from device.detections import Detections

INFLUX_V1 = os.environ.get("SCOPEHIVE_TEST_INFLUX_V1", "http://127.0.0.1:18086")
INFLUX_V2 = os.environ.get("SCOPEHIVE_TEST_INFLUX_URL", "http://127.0.0.1:18087")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def dets(boxes: list[list[float]], scores: list[float] | None = None, classes: list[int] | None = None) -> Detections:
    """Plain lists -> Detections, for readable test tables."""
    return Detections.from_lists(boxes, scores, classes)


class Influx:
    """A throwaway database on the real InfluxDB that `make test` started."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.v1_url = INFLUX_V1
        self.url = INFLUX_V2

    def query(self, q: str) -> list[dict[str, object]]:
        """InfluxQL -> list of series dicts (name, tags, columns, values)."""
        response = requests.post(
            f"{self.v1_url}/query", params={"db": self.database, "epoch": "ns"}, data={"q": q}, timeout=10
        )
        response.raise_for_status()
        result = response.json()["results"][0]
        if "error" in result:
            raise AssertionError(f"InfluxQL error for {q!r}: {result['error']}")
        return list(result.get("series", []))

    def rows(self, q: str) -> list[dict[str, object]]:
        """InfluxQL -> flat list of row dicts (tags merged in)."""
        out = []
        for series in self.query(q):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                row.update(series.get("tags") or {})
                out.append(row)
        return out


def create_database(prefix: str = "test") -> Influx:
    """A fresh database on the InfluxDB that `make test` started (fails loudly when it is down)."""
    try:
        requests.get(f"{INFLUX_V1}/ping", timeout=2).raise_for_status()
        requests.get(f"{INFLUX_V2}/ping", timeout=2).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(f"InfluxDB is not running on loopback ({exc}): run the tests with `make test`")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    requests.post(f"{INFLUX_V1}/query", data={"q": f'CREATE DATABASE "{name}"'}, timeout=10).raise_for_status()
    return Influx(name)


def drop_database(influx: Influx) -> None:
    requests.post(f"{INFLUX_V1}/query", data={"q": f'DROP DATABASE "{influx.database}"'}, timeout=10)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def influx() -> Iterator[Influx]:
    database = create_database()
    yield database
    drop_database(database)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def small_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-frame synthetic dataset package at 320x240."""
    from device.datasets.package import write_synthetic_package

    path = tmp_path_factory.mktemp("pkg") / "small.zip"
    write_synthetic_package(path, count=12, seed=7, width=320, height=240)
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API (moto's server) on loopback for the session: yields 'host:port'.

    Credentials are any non-empty pair; set SCOPEHIVE_S3_ACCESS_KEY/SECRET_KEY as the code wants.
    """
    import shutil
    import sys
    import time

    port = _free_port()
    exe = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.RequestException:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not start on 127.0.0.1:{port} (install the dev extra: moto[server])")
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(proc)
