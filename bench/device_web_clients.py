"""Benchmark: the device's web server under 300 long-lived clients (150 MJPEG + 150 SSE).

Starts `python -m device run` (synthetic microscope, demo model, unthrottled source) and prints,
idle and then with the clients connected: the device's RSS and thread count, /healthz p50/p95
latency (100 sequential requests) and the loop's FPS (frame points per second in its outbox);
how many clients were served and how many refused with 503; RSS after they left.
Targets (issue 11): RSS < idle + 150 MB, /healthz p95 < 200 ms, loop FPS within 10 % of idle.

    flock /tmp/cpu-heavy.lock nice -n 5 python bench/device_web_clients.py [--streams 150 --sse 150]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests
from device_common import ROOT, bench_bundle


class Clients:
    """Raw-socket HTTP clients that read everything they are sent (fast viewers), on one thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.status: dict[socket.socket, str] = {}
        self.bytes = 0
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def open(self, path: str) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        sock.setblocking(False)
        self.status[sock] = ""
        self._selector.register(sock, selectors.EVENT_READ)

    def _pump(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.2) if self._selector.get_map() else []:
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(262144)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not self.status.get(sock):
                    self.status[sock] = data[:12].decode(errors="replace").split(" ")[-1] or "closed"
                self.bytes += len(data)
                if not data:
                    self._selector.unregister(sock)
                    sock.close()
            if not self._selector.get_map():
                time.sleep(0.05)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for status in self.status.values():
            out[status or "pending"] = out.get(status or "pending", 0) + 1
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in list(self.status):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()


def loop_fps(outbox: Path, seconds: float) -> float:
    """Frame points the loop committed per second over the last `seconds`."""
    time.sleep(seconds)
    with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=30) as db:
        since = int((time.time() - seconds) * 1e6)
        rows = db.execute("SELECT count(*) FROM points WHERE measurement = 'frame' AND ts_us >= ?", (since,)).fetchone()[0]
    return float(rows) / seconds


def healthz_latency(base: str, n: int = 100) -> tuple[float, float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        requests.get(f"{base}/healthz", timeout=10)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return times[n // 2], times[int(n * 0.95) - 1]


def snapshot(label: str, proc: psutil.Process, base: str, outbox: Path, window: float) -> dict[str, float]:
    fps = loop_fps(outbox, window)
    p50, p95 = healthz_latency(base)
    rss = proc.memory_info().rss / 1e6
    figures = {"rss_mb": rss, "threads": proc.num_threads(), "p50_ms": p50, "p95_ms": p95, "fps": fps}
    print(f"{label:<28} RSS {rss:7.1f} MB  threads {proc.num_threads():4d}  /healthz p50 {p50:6.1f} ms "
          f"p95 {p95:6.1f} ms  loop {fps:6.1f} FPS", flush=True)
    return figures


def start_device(port: int, data: Path, extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
    bundle, label = bench_bundle()
    print(f"model: {label}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPEHIVE_")}
    env.update({"SCOPEHIVE_HOST": "127.0.0.1", "SCOPEHIVE_LOG_LEVEL": "WARNING", **extra_env})
    cmd = [sys.executable, "-m", "device", "run", "--source", "synthetic://?seed=1&width=640&height=480",
           "--model", str(bundle), "--port", str(port), "--data-dir", str(data)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(data / "device.log", "wb"))  # noqa: SIM115
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code in (200, 503):
                return proc
        except requests.RequestException:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"the device did not start: {(data / 'device.log').read_text()[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=150)
    parser.add_argument("--sse", type=int, default=150)
    parser.add_argument("--window", type=float, default=15.0, help="seconds per measurement")
    parser.add_argument("--max-stream-clients", type=int, help="device setting web.max_stream_clients (default: its own)")
    parser.add_argument("--max-sse-clients", type=int, help="device setting web.max_sse_clients (default: its own)")
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = Path(tempfile.mkdtemp(prefix="bench-web-"))
    extra = {}
    if args.max_stream_clients:
        extra["SCOPEHIVE_WEB__MAX_STREAM_CLIENTS"] = str(args.max_stream_clients)
    if args.max_sse_clients:
        extra["SCOPEHIVE_WEB__MAX_SSE_CLIENTS"] = str(args.max_sse_clients)
    device = start_device(port, data, extra)
    proc, base, outbox = psutil.Process(device.pid), f"http://127.0.0.1:{port}", data / "outbox.sqlite"
    try:
        time.sleep(10)  # model warm, caches full
        idle = snapshot("idle", proc, base, outbox, args.window)
        clients = Clients(port)
        for i in range(max(args.streams, args.sse)):
            if i < args.streams:
                clients.open("/stream.mjpg")
            if i < args.sse:
                clients.open("/api/live?interval=0.5")
        time.sleep(5)
        busy = snapshot(f"{args.streams} MJPEG + {args.sse} SSE", proc, base, outbox, args.window)
        print(f"clients: {clients.counts()} (status of the first response line); {clients.bytes / 1e6:.0f} MB received")
        clients.close()
        time.sleep(10)
        after = snapshot("after they left", proc, base, outbox, args.window)
        print(f"RSS growth with clients: {busy['rss_mb'] - idle['rss_mb']:+.1f} MB (target < +150 MB); kept after they "
              f"left: {after['rss_mb'] - idle['rss_mb']:+.1f} MB")
        print(f"/healthz p95 with clients: {busy['p95_ms']:.1f} ms (target < 200 ms)")
        print(f"loop FPS with clients: {busy['fps']:.1f} vs idle {idle['fps']:.1f} = {busy['fps'] / max(idle['fps'], 1e-9):.1%} "
              "(target >= 90 %)")
    finally:
        device.terminate()
        device.wait(timeout=30)


if __name__ == "__main__":
    main()
