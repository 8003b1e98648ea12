"""Benchmark: the device loop with 1, 2 and 3 models on one feed (the demo model each time, on
1280x960 synthetic frames, every frame).

Target: each extra model costs no more than its own bare inference time + 5 %. Prints the loop's
frame time with k models, what the k-th model added, and that model's bare detect() time.

Memory after a beside-model is removed (--memory-cycles): the device's RSS with the main model
running, after adding a second model beside it (a copy of the bundle elsewhere, so its own
inference session) and after removing it again, several cycles. Target: back near the baseline
(within 10 % of one model's cost), not growing from cycle to cycle.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from device_common import ReplaySource, bench_bundle, synthetic_frames

from device.app import build_device
from device.config import DeviceConfig
from device.inference.detector import load_detector
from device.sources.capture import Capture


def loop_ms(bundle: Path, frames: list[np.ndarray], models: int, n: int) -> float:
    extra = [{"name": f"m{i}", "bundle": str(bundle)} for i in range(1, models)]
    config = DeviceConfig.model_validate({"model": str(bundle), "models": extra, "data_dir": tempfile.mkdtemp(prefix="bench-mm-"),
                                          "port": 0, "backend": "onnx"})
    runtime = build_device(config, Capture(ReplaySource(frames))).start()
    runtime.run(max_frames=5)
    start = time.perf_counter()
    runtime.run(max_frames=5 + n)
    elapsed = time.perf_counter() - start
    runtime.shutdown()
    return elapsed / n * 1000


def bare_ms(bundle: Path, frames: list[np.ndarray], n: int) -> float:
    detector = load_detector(bundle, "onnx", Path(tempfile.mkdtemp()))
    start = time.perf_counter()
    for i in range(n):
        detector.detect(frames[i % len(frames)])
    return (time.perf_counter() - start) / n * 1000


def rss_mb() -> float:
    import psutil

    gc.collect()
    return float(psutil.Process().memory_info().rss) / 2**20


def memory_beside(bundle: Path, frames: list[np.ndarray], cycles: int, n: int) -> None:
    """Add a model beside the main one, run, remove it, run: RSS at each step, per cycle."""
    data = Path(tempfile.mkdtemp(prefix="bench-mm-mem-"))
    other = data / "beside"
    shutil.copytree(bundle, other)  # another path: its own inference session (same path would share)
    config = DeviceConfig.model_validate({"model": str(bundle), "data_dir": str(data), "port": 0, "backend": "onnx"})
    runtime = build_device(config, Capture(ReplaySource(frames))).start()
    done = 0

    def run(k: int) -> None:
        nonlocal done
        done += k
        runtime.run(max_frames=done)

    run(n)
    baseline = rss_mb()
    print(f"memory: main model only, after {n} frames: {baseline:.0f} MB RSS")
    rows = []
    for cycle in range(1, cycles + 1):
        runtime.parts.feed.add_model("beside", other)  # what the panel's "run beside" calls
        run(n)
        added = rss_mb()
        runtime.parts.feed.remove_model("beside")
        run(n)
        removed = rss_mb()
        rows.append((added, removed))
        print(f"cycle {cycle}: with the model beside {added:.0f} MB ({added - baseline:+.0f}), "
              f"after removing it {removed:.0f} MB ({removed - baseline:+.0f} over the baseline)")
    runtime.shutdown()
    cost = float(np.median([a - r for a, r in rows]))
    kept = rows[-1][1] - baseline
    verdict = "ok" if kept <= max(0.1 * cost, 10.0) else "KEPT"
    print(f"one model beside costs {cost:.0f} MB; after {cycles} add/remove cycles {kept:+.0f} MB stays over the baseline ({verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-cycles", type=int, default=5, help="add/remove cycles of the memory figure (0: none)")
    parser.add_argument("--memory-only", action="store_true", help="only the memory figure")
    args = parser.parse_args()
    bundle, what = bench_bundle()
    print(f"model: {what}")
    frames = synthetic_frames(10)
    if args.memory_cycles:
        memory_beside(bundle, frames, args.memory_cycles, args.frames)
    if args.memory_only:
        return
    # alternate and keep medians: on a shared machine single runs drift
    bares, loops = [], {1: [], 2: [], 3: []}  # type: ignore[var-annotated]
    for _ in range(args.repeats):
        bares.append(bare_ms(bundle, frames, args.frames))
        for k in loops:
            loops[k].append(loop_ms(bundle, frames, k, args.frames))
    bare = float(np.median(bares))
    times = {k: float(np.median(v)) for k, v in loops.items()}
    print(f"bare inference of one model: {bare:.1f} ms/frame (budget per extra model: {1.05 * bare:.1f} ms)")
    for k, ms in times.items():
        added = ms - times[k - 1] if k > 1 else float("nan")
        verdict = "" if k == 1 else f"  extra model added {added:.1f} ms = {added / bare:.3f} x bare ({'ok' if added <= 1.05 * bare else 'OVER'})"
        print(f"{k} model(s): loop {ms:.1f} ms/frame = {1000 / ms:.1f} FPS{verdict}")


if __name__ == "__main__":
    main()
