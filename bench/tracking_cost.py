"""Benchmark: what tracking costs the device loop at 100 objects per frame.

Prints: tracking + track statistics (tracker, drift, unique counts, crossing line, points) in ms
per frame at ~100 objects (CPU time, median of 3 runs), as a share of the demo model's frame time
on 1280x960 frames (target < 2 %); and the whole loop with tracking vs bare inference on frames
of ~100 objects (target >= 0.95), with the loop without tracking for reference.

    PYTHONPATH=. python bench/tracking_cost.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from device_common import ReplaySource, bench_bundle
from device_loop import bare_fps

from device.app import build_device
from device.config import DeviceConfig
from device.sources.capture import Capture
from device.sources.synthetic import SyntheticConfig, SyntheticMicroscope
from device.tracking.settings import TrackingSettings
from device.tracking.simulate import sequence
from device.tracking.stage import TrackingStage

DENSITY = 100.0  # objects per Mpx: ~100 detected on a 1280x960 frame (a few are hidden or cut by the edge)
CLASSES = ("cell", "crystal", "debris")


def tracking_ms(frames: int) -> tuple[float, float]:
    """CPU ms per frame of the tracking stage on imitated detections, and objects per frame."""
    sim = [(f.detections, f.t) for f in sequence(SyntheticConfig(seed=3, density=DENSITY, motion="swim"), frames)]
    runs = []
    for _ in range(3):
        stage = TrackingStage(TrackingSettings(line=(640, 0, 640, 960), flow_rate_ul_min=1.0, interval_s=1.0), 0.65)
        start = time.process_time()
        for found, t in sim:
            stage.update(found, t, (960, 1280), "model", CLASSES, {"device": "bench", "model": "m"})
        runs.append((time.process_time() - start) / len(sim) * 1000)
    return float(np.median(runs)), float(np.mean([len(d) for d, _ in sim]))


def dense_frames(count: int) -> list[np.ndarray]:
    scope = SyntheticMicroscope(seed=3, density=DENSITY)
    return [scope.read().image for _ in range(count)]


def loop_fps(bundle: Path, frames: list[np.ndarray], n: int, tracking: bool) -> tuple[float, float]:
    """Loop FPS over `n` frames and the main model's mean objects per frame."""
    config = DeviceConfig.model_validate({"model": str(bundle), "data_dir": tempfile.mkdtemp(prefix="bench-track-"),
                                          "port": 0, "um_per_pixel": 0.65, "tracking": {"enabled": tracking}})
    runtime = build_device(config, Capture(ReplaySource(frames))).start()
    runtime.run(max_frames=5)
    start = time.perf_counter()
    runtime.run(max_frames=5 + n)
    elapsed = time.perf_counter() - start
    objects = np.mean([h.get("count") or 0 for h in runtime.parts.outbox.history(3600)[-n:]])
    runtime.shutdown()
    return n / elapsed, float(objects)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=30, help="frames per loop run (the demo model takes ~0.7 s a frame on 2 CPU cores)")
    args = parser.parse_args()
    cost, per_frame = tracking_ms(300)
    print(f"tracking + statistics: {cost:.3f} ms/frame (CPU) at {per_frame:.0f} objects/frame")
    bundle, what = bench_bundle()
    frames = dense_frames(30)
    bares, with_tracking, without = [], [], []
    for _ in range(3):  # alternate and keep medians: single runs on a shared machine drift by +-30 %
        bares.append(bare_fps(bundle, frames, args.frames))
        with_tracking.append(loop_fps(bundle, frames, args.frames, True))
        without.append(loop_fps(bundle, frames, args.frames, False))
    bare = float(np.median(bares))
    loop_on = float(np.median([fps for fps, _ in with_tracking]))
    loop_off = float(np.median([fps for fps, _ in without]))
    objects = with_tracking[0][1]
    print(f"model: {what}; {objects:.0f} objects/frame detected on the 1280x960 frames")
    print(f"bare inference: {bare:.1f} FPS = {1000 / bare:.1f} ms/frame; tracking = {100 * cost * bare / 1000:.2f} % of it (target < 2 %)")
    print(f"loop with tracking: {loop_on:.1f} FPS, loop/bare = {loop_on / bare:.3f} (target >= 0.95); "
          f"without tracking: {loop_off:.1f} FPS ({loop_off / bare:.3f})")


if __name__ == "__main__":
    main()
