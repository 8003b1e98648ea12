"""A real hive server for tests: `python -m trainer serve` (Triton through PyTriton) in the hive
environment (.venv-hive, `make hive-env`), on free loopback ports, in its own process group so a
test can kill it like a power cut and start it again on the same port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[3]


def _hive_path() -> Path:
    return Path(os.environ.get("SCOPEHIVE_TEST_HIVE_PYTHON", ROOT / ".venv-hive" / "bin" / "python"))


def hive_available() -> bool:
    """True where the hive server environment is set up (always under CI: `make test` makes it)."""
    if not _hive_path().exists() and os.environ.get("CI"):
        pytest.fail(f"no hive server environment at {_hive_path()}: `make hive-env` should have made it")
    return _hive_path().exists()


def hive_python() -> Path:
    """The hive environment's interpreter; skipped (failed under CI) when it is not set up."""
    path = _hive_path()
    if not path.exists():
        message = f"no hive server environment at {path}: run `make hive-env`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HiveServer:
    """One `trainer serve` process serving `bundles`; `url` is what a device puts in hive.endpoints."""

    def __init__(self, bundles: list[Path], log: Path) -> None:
        self.bundles = bundles
        self.ports = (free_port(), free_port(), free_port())
        self.url = f"http://127.0.0.1:{self.ports[0]}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, models: list[str], timeout: float = 90.0) -> HiveServer:
        http, grpc, metrics = self.ports
        cmd = [str(hive_python()), "-m", "trainer", "serve", *map(str, self.bundles), "--http-port", str(http),
               "--grpc-port", str(grpc), "--metrics-port", str(metrics)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self.wait_ready(models, timeout)

    def wait_ready(self, models: list[str], timeout: float) -> HiveServer:
        """Returns once each of `models` and its JPEG entry point (`trainer serve` binds both, one
        after the other) is ready, and then the server. Triton's server readiness means every model
        it has been asked to load is loaded, so it reads ready in the gap before PyTriton asks for
        the second one and not ready (400) again while that one loads (seen under CI)."""
        assert self.process is not None
        waited = sorted({*models, *(m + "_jpeg" for m in models if not m.endswith("_jpeg"))})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hive server exited with {self.process.returncode}: {self.log.read_text()[-3000:]}")
            if all(self._ready(m) for m in waited) and self._ready(""):
                return self
            time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"hive server not ready after {timeout} s: {self.log.read_text()[-3000:]}")

    def _ready(self, model: str) -> bool:
        try:
            path = f"/v2/models/{model}/ready" if model else "/v2/health/ready"  # server ready = every model loaded
            return requests.get(self.url + path, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def kill(self) -> None:
        """SIGKILL the whole group (PyTriton's Python process, tritonserver and its stubs)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None
        _wait_port_free(self.ports[0])


def _wait_port_free(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.1)
    print(f"port {port} still answers after the kill", file=sys.stderr)
