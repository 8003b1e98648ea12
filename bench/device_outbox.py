"""Benchmark: outbox -> InfluxDB throughput (target >= 20,000 points/s) against the real InfluxDB
that `make test` / tests/services/services.sh starts on loopback (v2 write API via the nginx proxy).

`--budget-race`: InfluxDB unreachable, a writer commits one frame (4 points) as fast as it can for
`--seconds` while the upkeep thread evicts; per disk budget it prints commits/s, commit p50/p99 and
the peak footprint (DB + WAL + SHM) against the budget."""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from device_common import ROOT  # noqa: F401  (puts the repo on sys.path)

from device.metrics.outbox import Outbox
from device.metrics.points import Point
from device.metrics.sender import OutboxSender
from device.metrics.settings import InfluxSettings


def frame_like_points(n: int) -> list[Point]:
    """frame + class_stats shaped points, four per simulated frame."""
    tags = {"device": "bench", "project": "p", "model": "demo", "model_version": "1"}
    start = int(time.time() * 1e6) - n
    points = []
    for i in range(n // 4):
        ts = start + i * 4
        points.append(Point("frame", tags, {"count": 12, "fps": 30.0, "inference_ms": 20.5, "latency_ms": 31.0,
                                            "dropped_frames": 0, "frame_index": i, "score_mean": 0.8, "score_min": 0.4}, ts))
        for cls in ("cell", "crystal", "debris"):
            fields = {"count": 4, **{f"{d}_px_{s}": 12.5 for d in ("width", "height", "area") for s in ("mean", "median", "p90")},
                      "score_mean": 0.8}
            points.append(Point("class_stats", {**tags, "class": cls}, fields, ts))
    return points


def budget_race(budget_mb: float, seconds: float) -> None:
    """Writer vs eviction with InfluxDB unreachable (port 9 on loopback: connection refused)."""
    path = Path(tempfile.mkdtemp()) / "o.sqlite"
    outbox = Outbox(path, int(budget_mb * 1e6), 3600)
    sender = OutboxSender(outbox, InfluxSettings(url="http://127.0.0.1:9", timeout_s=1)).start()
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            size = sum(os.stat(f"{path}{s}").st_size for s in ("", "-wal", "-shm") if os.path.exists(f"{path}{s}"))
            peak[0] = max(peak[0], size)
            time.sleep(0.002)

    threading.Thread(target=sample, daemon=True).start()
    points, times = frame_like_points(400_000), []
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        outbox.add(points[(i * 4) % len(points): (i * 4) % len(points) + 4])
        times.append(time.perf_counter() - start)
        i += 1
    stop.set()
    sender.stop()
    times.sort()
    print(f"budget {budget_mb:>7.1f} MB: {len(times) / seconds:7.0f} commits/s, commit p50 {times[len(times) // 2] * 1e3:.2f} ms "
          f"p99 {times[int(len(times) * 0.99)] * 1e3:.2f} ms, peak footprint {peak[0] / 1e6:.3f} MB "
          f"({peak[0] / (budget_mb * 1e6):.0%} of budget), dropped {outbox.dropped():,} points")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--url", default="http://127.0.0.1:18087")
    parser.add_argument("--v1-url", default="http://127.0.0.1:18086")
    parser.add_argument("--budget-race", action="store_true", help="writer vs eviction per disk budget (no InfluxDB)")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if args.budget_race:
        for budget in (0.3, 4.0, 256.0):
            budget_race(budget, args.seconds)
        return
    database = f"bench_{uuid.uuid4().hex[:8]}"
    requests.post(f"{args.v1_url}/query", data={"q": f'CREATE DATABASE "{database}"'}, timeout=10).raise_for_status()
    try:
        for batch in (5000, 10000):
            outbox = Outbox(Path(tempfile.mkdtemp()) / "o.sqlite", 10**10, 3600)
            points = frame_like_points(args.points)
            for i in range(0, len(points), 1000):
                outbox.add(points[i : i + 1000])
            sender = OutboxSender(outbox, InfluxSettings(url=args.url, bucket=database, batch_size=batch))
            start = time.perf_counter()
            sender.drain()
            elapsed = time.perf_counter() - start
            print(f"outbox -> InfluxDB, batch {batch}: {len(points)} points in {elapsed:.2f} s = "
                  f"{len(points) / elapsed:,.0f} points/s (target >= 20,000)")
        result = requests.post(f"{args.v1_url}/query", params={"db": database},
                               data={"q": 'SELECT count("count") FROM "frame"'}, timeout=30).json()
        print(f"frame points visible via InfluxQL: {result['results'][0]['series'][0]['values'][0][1]}")
    finally:
        requests.post(f"{args.v1_url}/query", data={"q": f'DROP DATABASE "{database}"'}, timeout=30)


if __name__ == "__main__":
    main()
