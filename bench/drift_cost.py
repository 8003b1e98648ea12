"""Benchmark: what the drift alarm costs per frame, and how often it cries wolf.

Prints: the drift stage's CPU time per analysed frame at 100 objects (the monitor's window sums,
PSI and medians; median of 3 runs; target < 0.5 ms), and, with --stationary, the false alarms on a
30-minute stream (27,000 frames at 15 fps) of the synthetic microscope's truth scored from a fixed
Beta(9, 2), a new field every 50 frames, against a baseline of 60 frames of another seed (as in
tests/device/drift/test_synthetic_drift.py).

    PYTHONPATH=. python bench/drift_cost.py [--stationary]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from device.detections import Detections
from device.drift.baseline import VALIDATION, build_baseline
from device.drift.monitor import DriftMonitor, nearest_to_raising
from device.drift.settings import DriftSettings
from device.sources.synthetic import CLASSES, SyntheticMicroscope

OBJECTS = 100


def frames_of(n: int, rng: np.random.Generator, objects: int = OBJECTS) -> list[Detections]:
    out = []
    for _ in range(n):
        xy = rng.uniform(0, 1200, (objects, 2))
        wh = np.exp(rng.uniform(np.log(8), np.log(40), (objects, 2)))
        out.append(Detections(np.concatenate([xy, xy + wh], 1), rng.beta(9, 2, objects), rng.integers(0, 3, objects)))
    return out


def cost_ms(frames: int = 3000) -> float:
    rng = np.random.default_rng(0)
    stream = frames_of(frames, rng)
    baseline = build_baseline(frames_of(60, rng), CLASSES, VALIDATION)
    runs = []
    for _ in range(3):
        monitor = DriftMonitor(DriftSettings(), CLASSES, baseline)
        for d in stream[:300]:  # a full window first: judging runs on every later frame
            monitor.observe(d)
        start = time.process_time()
        for d in stream[300:]:
            monitor.observe(d)
        runs.append((time.process_time() - start) / (frames - 300) * 1000)
    return float(np.median(runs))


def _fields(seed: int) -> object:
    scope = SyntheticMicroscope(width=640, height=480, density=120, seed=seed)
    i = 0
    while True:
        i += 1
        if i % 50 == 0:
            scope.new_scene()
        yield scope.read().truth


def stationary(frames: int = 27_000) -> tuple[int, float, float]:
    """Alarms raised on a stationary stream, the nearest any statistic came (1 = raises), seconds."""
    rng = np.random.default_rng(7)
    val = _fields(99)
    kept = [next(val) for _ in range(1500)][24::25]  # type: ignore[call-overload]
    score = lambda t: Detections(t.xyxy, rng.beta(9, 2, len(t)).astype(np.float32), t.class_ids)  # noqa: E731
    baseline = build_baseline([score(t) for t in kept], CLASSES, VALIDATION)
    monitor, stream = DriftMonitor(DriftSettings(), CLASSES, baseline), _fields(7)
    raised, nearest, start = 0, 0.0, time.perf_counter()
    for _ in range(frames):
        raised += monitor.observe(score(next(stream))) == "raised"  # type: ignore[call-overload]
        nearest = max(nearest, nearest_to_raising(monitor.state.stats, monitor.settings))
    return raised, nearest, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stationary", action="store_true", help="also run the 30-minute stationary stream (~1 min)")
    args = parser.parse_args()
    print(f"drift statistics: {cost_ms():.3f} ms CPU per analysed frame at {OBJECTS} objects (target < 0.5 ms)")
    if args.stationary:
        raised, nearest, seconds = stationary()
        print(f"stationary stream, 27,000 analysed frames (30 min at 15 fps): {raised} alarm(s) "
              f"({raised / 27_000 * 1000:.3f} per 1,000 frames); nearest a statistic came to raising: "
              f"{nearest:.2f} of its thresholds (objects/frame, size, score; class mix not included) ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
