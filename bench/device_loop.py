"""Benchmark: bare inference vs the whole device loop on 1280x960 synthetic frames.

Prints: bare FPS, loop FPS and their ratio (target >= 0.95); metrics + outbox cost per frame
(target < 2 % of frame time); p95 capture-to-result latency with a camera at 80 % of the model's
rate (target < 2 frame periods); RSS growth over a run (`--minutes 10` for the full check).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from device_common import ReplaySource, bench_bundle, synthetic_frames

from device.app import build_device
from device.config import DeviceConfig
from device.inference.detector import load_detector
from device.metrics.outbox import Outbox
from device.metrics.stats import FrameMeasure, frame_points
from device.runtime import Runtime
from device.sources.capture import Capture


def runtime_for(bundle: Path, source: ReplaySource, settings: dict[str, Any] | None = None) -> Runtime:
    """The device's own wiring (build_device) on `source`; `settings` override config keys
    (e.g. {"drift": {"enabled": False}}); otherwise the config's defaults."""
    config = DeviceConfig.model_validate({"model": str(bundle), "data_dir": tempfile.mkdtemp(prefix="bench-loop-"),
                                          "port": 0, "um_per_pixel": 0.65, **(settings or {})})
    runtime = build_device(config, Capture(source)).start()
    return runtime


def bare_fps(bundle: Path, frames: list[np.ndarray], n: int) -> float:
    detector = load_detector(bundle, "auto", Path(tempfile.mkdtemp()))
    start = time.perf_counter()
    for i in range(n):
        detector.detect(frames[i % len(frames)])
    return n / (time.perf_counter() - start)


def loop_fps(bundle: Path, frames: list[np.ndarray], n: int) -> float:
    runtime = runtime_for(bundle, ReplaySource(frames))
    runtime.run(max_frames=5)
    start = time.perf_counter()
    runtime.run(max_frames=5 + n)
    elapsed = time.perf_counter() - start
    runtime.shutdown()
    return n / elapsed


def metrics_cost_ms(bundle: Path, frames: list[np.ndarray], n: int) -> float:
    detector = load_detector(bundle, "auto", Path(tempfile.mkdtemp()))
    detections = [detector.detect(f) for f in frames[:10]]
    outbox = Outbox(Path(tempfile.mkdtemp()) / "o.sqlite", 10**9, 3600, sending=True)
    tags = {"device": "bench", "project": "p", "model": "m", "model_version": "1"}
    start = time.perf_counter()
    for i in range(n):
        measure = FrameMeasure(i, time.time(), 30.0, 10.0, 20.0, 0)
        outbox.add(frame_points(detections[i % 10], measure, tags, detector.card.classes, 0.65))
    return (time.perf_counter() - start) / n * 1000


def latency_p95(bundle: Path, frames: list[np.ndarray], fps: float, seconds: float) -> tuple[float, float]:
    runtime = runtime_for(bundle, ReplaySource(frames, fps))
    runtime.run(max_frames=int(fps * seconds))
    runtime.shutdown()
    latencies = [h["latency_ms"] for h in runtime.parts.outbox.history(3600)]
    return float(np.percentile(latencies[5:], 95)), 1000.0 / fps


def rss_run(bundle: Path, frames: list[np.ndarray], minutes: float) -> tuple[float, float]:
    runtime = runtime_for(bundle, ReplaySource(frames))
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    proc = psutil.Process()
    time.sleep(min(20.0, minutes * 60 / 4))  # let caches, arenas and SQLite settle first
    first = proc.memory_info().rss
    time.sleep(minutes * 60 * 0.75)
    last = proc.memory_info().rss
    runtime.stop()
    thread.join()
    runtime.shutdown()
    return first / 2**20, last / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=1.0, help="RSS run length (the target is stated for 10)")
    args = parser.parse_args()
    bundle, what = bench_bundle()
    print(f"model: {what}")
    frames = synthetic_frames(20)
    # alternate the two and keep the medians: on a shared machine single runs drift by +-30 %
    bares, loops = [], []
    for _ in range(3):
        bares.append(bare_fps(bundle, frames, args.frames))
        loops.append(loop_fps(bundle, frames, args.frames))
    bare, loop = float(np.median(bares)), float(np.median(loops))
    print(f"bare inference: {bare:.1f} FPS; whole loop: {loop:.1f} FPS; loop/bare = {loop / bare:.3f} (target >= 0.95)")
    cost = metrics_cost_ms(bundle, frames, 2000)
    print(f"metrics + outbox: {cost:.3f} ms/frame = {100 * cost * loop / 1000:.2f} % of the loop's frame time (target < 2 %)")
    p95, period = latency_p95(bundle, frames, fps=0.8 * loop, seconds=8)
    print(f"capture-to-result latency p95 at {0.8 * loop:.1f} FPS camera: {p95:.1f} ms = {p95 / period:.2f} frame periods (target < 2)")
    first, last = rss_run(bundle, frames, args.minutes)
    print(f"RSS over a {args.minutes:g}-minute run: {first:.1f} -> {last:.1f} MiB ({100 * (last - first) / first:+.2f} %, target < 5 %)")


if __name__ == "__main__":
    main()
