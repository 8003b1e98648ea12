"""Benchmark: the device loop with 1, 2 and 3 models on one feed (the demo model each time, on
1280x960 synthetic frames, every frame).

Target: each extra model costs no more than its own bare inference time + 5 %. Prints the loop's
frame time with k models, what the k-th model added, and that model's bare detect() time.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bundle, what = bench_bundle()
    print(f"model: {what}")
    frames = synthetic_frames(10)
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
