"""A real `python -m trainer worker` on loopback for tests: start, SIGKILL, restart, call its API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

TOKEN_A = "token-of-device-a-0123456789"
TOKEN_B = "token-of-device-b-0123456789"
SHARED = "shared-lab-token-0123456789"
# Tiny trainings: 160x128 frames, 64 px crops, 2 crops a step; a run is TensorFlow's start-up,
# 16 steps an epoch and the ONNX export (under a minute on 2 busy cores).
QUICK = {"input_size": 160, "crop": 64, "batch_size": 2}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_package(path: Path, count: int = 8, seed: int = 1, **scene: Any) -> Path:
    from device.datasets.package import write_synthetic_package

    path.parent.mkdir(parents=True, exist_ok=True)
    write_synthetic_package(path, count, seed=seed, width=160, height=128, density=120, **scene)
    return path


class TrainerWorker:
    """The worker as a child process, its store a folder, per-device tokens and a shared one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = root / "store"
        self.work = root / "work"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "worker.log"

    def start(self, **extra_env: str) -> TrainerWorker:
        env = {**os.environ, "SCOPEHIVE_TRAINER_TOKENS": f"dev-a={TOKEN_A},dev-b={TOKEN_B}", "SCOPEHIVE_TRAINER_TOKEN": SHARED,
               "TF_CPP_MIN_LOG_LEVEL": "2", **extra_env}
        self.store.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "trainer", "worker", "--store", f"file://{self.store}", "--work", str(self.work),
                 "--host", "127.0.0.1", "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(self.url + "/healthz", timeout=1)
                return self
            except requests.RequestException:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"trainer worker did not start: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def sigkill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def call(self, method: str, path: str, token: str = TOKEN_A, body: Any = None, device: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"}
        if device:
            headers["X-ScopeHive-Device"] = device
        return requests.request(method, self.url + path, json=body, headers=headers, timeout=60)

    def put(self, key: str, source: Path) -> str:
        target = self.store / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
        return key

    def wait(self, job_id: str, until: Any, timeout: float = 240, token: str = TOKEN_A) -> dict[str, Any]:
        """Poll the job until `until(job)` holds; returns the job (fails with its last state on timeout)."""
        deadline = time.monotonic() + timeout
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = self.call("GET", f"/v1/jobs/{job_id}", token).json()
            if until(job):
                return job
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} did not get there in {timeout} s: {job.get('state')} {job.get('message')}\n"
                             f"{self.log.read_text()[-3000:]}")


def training_children(job_id: str) -> list[int]:
    """Process ids of `trainer train` processes of this job that still run."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"train" in cmdline and any(job_id.encode() in part for part in cmdline):
            out.append(int(entry.name))
    return out
