"""A private InfluxDB 1.x + nginx v2-write proxy on free loopback ports, for tests that stop and
restart the database (the shared one from `make test` must stay up for everyone else)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

SERVICES = Path(__file__).resolve().parents[2] / "services"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateInflux:
    def __init__(self) -> None:
        # Not under pytest's tmp_path: that is mode 0700, and nginx workers (user nobody) must be
        # able to buffer large request bodies under the nginx folder.
        root = Path(tempfile.mkdtemp(prefix="scopehive-influx-"))
        root.chmod(0o755)
        self.root = root
        self.http_port, self.rpc_port, self.proxy_port = free_port(), free_port(), free_port()
        self.v1_url = f"http://127.0.0.1:{self.http_port}"
        self.url = f"http://127.0.0.1:{self.proxy_port}"
        self._influxd: subprocess.Popen[bytes] | None = None
        (root / "influxdb").mkdir(parents=True, exist_ok=True)
        (root / "nginx").mkdir(parents=True, exist_ok=True)
        (root / "nginx").chmod(0o777)
        conf = (SERVICES / "influxdb.conf").read_text().replace("@VAR@", str(root))
        conf = conf.replace("127.0.0.1:18088", f"127.0.0.1:{self.rpc_port}").replace("127.0.0.1:18086", f"127.0.0.1:{self.http_port}")
        (root / "influxdb.conf").write_text(conf)
        proxy = (SERVICES / "nginx.conf").read_text().replace("@VAR@", str(root))
        proxy = proxy.replace("127.0.0.1:18086", f"127.0.0.1:{self.http_port}").replace("127.0.0.1:18087", f"127.0.0.1:{self.proxy_port}")
        (root / "nginx.conf").write_text(proxy)

    def _wait(self, url: str, up: bool = True, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                requests.get(url, timeout=0.5)
                if up:
                    return
            except requests.RequestException:
                if not up:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{url} did not {'come up' if up else 'go down'} in {timeout} s; see {self.root}")

    def start_influxd(self) -> None:
        log = open(self.root / "influxd.log", "ab")  # noqa: SIM115 (kept open for the process)
        self._influxd = subprocess.Popen(["influxd", "-config", str(self.root / "influxdb.conf")], stdout=log, stderr=log)
        self._wait(f"{self.v1_url}/ping")

    def stop_influxd(self) -> None:
        if self._influxd is not None:
            self._influxd.terminate()
            self._influxd.wait(timeout=20)
            self._influxd = None

    def start(self, database: str) -> PrivateInflux:
        self.start_influxd()
        subprocess.run(["nginx", "-c", str(self.root / "nginx.conf"), "-p", str(self.root / "nginx")], check=True)
        self._wait(f"{self.url}/ping")
        self.query(f'CREATE DATABASE "{database}"')
        return self

    def stop(self) -> None:
        subprocess.run(["nginx", "-c", str(self.root / "nginx.conf"), "-p", str(self.root / "nginx"), "-s", "stop"], check=False)
        self.stop_influxd()
        shutil.rmtree(self.root, ignore_errors=True)

    def query(self, q: str, database: str = "") -> list[dict[str, object]]:
        response = requests.post(f"{self.v1_url}/query", params={"db": database, "epoch": "us"}, data={"q": q}, timeout=10)
        response.raise_for_status()
        return list(response.json()["results"][0].get("series", []))
