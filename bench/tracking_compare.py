"""Benchmark: candidate trackers on seeded synthetic sequences with known identities.

Prints per sequence and tracker: MOTA, IDF1 and ID switches per 100 true tracks (py-motmetrics,
centres matched within 8 px), tracks seen >= 5 frames against the true objects, and CPU time per
frame.
Candidates: the device's FieldTracker, ByteTrack (supervision 0.25, the last release that ships
it) and norfair, all per class on the same imitated detections (truth boxes jittered by 0.7 px,
3 % missed).

The libraries cannot live in the device's environment (supervision 0.25 requires opencv-python
beside our headless OpenCV; norfair pins numpy < 2), so run this in a throwaway venv:

    python -m venv /tmp/trk && /tmp/trk/bin/pip install "numpy>=2,<2.3" scipy opencv-python \\
        "supervision==0.25.1" filterpy rich pydantic pyyaml motmetrics && /tmp/trk/bin/pip install --no-deps norfair==2.3.0
    PYTHONPATH=. /tmp/trk/bin/python bench/tracking_compare.py
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from device.detections import Detections  # noqa: E402
from device.sources.synthetic import SyntheticConfig  # noqa: E402
from device.tracking.settings import TrackingSettings  # noqa: E402
from device.tracking.simulate import DetectorNoise, SimFrame, sequence, true_unique  # noqa: E402
from device.tracking.tracker import FieldTracker  # noqa: E402

FPS = 15.0
MIN_FRAMES = 5
MATCH_PX = 8.0
SEQUENCES: dict[str, dict[str, Any]] = {
    "cells, demo density, drift 1 px/frame": {"density": 60, "drift": 1.0},
    "dense, touching, drift 2 px/frame": {"density": 150, "cluster_fraction": 0.6, "drift": 2.0},
    "swimmers 4 px/frame, drift 0.4": {"density": 60, "motion": "swim", "swim_speed": 4.0},
    "channel flow 6 px/frame (640x480)": {"density": 150, "motion": "flow", "flow_speed": 6.0, "drift": 0.0,
                                          "width": 640, "height": 480},
}

Step = Callable[[Detections], tuple[np.ndarray, np.ndarray]]  # detections -> (centres (n, 2), track ids (n,))


def field_tracker() -> Step:
    tracker = FieldTracker(TrackingSettings(min_frames=MIN_FRAMES))
    clock = iter(range(10**9))

    def step(found: Detections) -> tuple[np.ndarray, np.ndarray]:
        ids = tracker.update(found, next(clock) / FPS).ids
        return (found.xyxy[:, :2] + found.xyxy[:, 2:]) / 2, ids

    return step


def bytetrack() -> Step:
    import supervision as sv

    trackers: dict[int, Any] = {}

    def step(found: Detections) -> tuple[np.ndarray, np.ndarray]:
        centres, ids = [], []
        for cls in range(3):  # one tracker per class: ByteTrack itself ignores classes
            mask = found.class_ids == cls
            tracker = trackers.setdefault(cls, sv.ByteTrack(frame_rate=int(FPS), lost_track_buffer=int(FPS)))
            out = tracker.update_with_detections(sv.Detections(found.xyxy[mask].astype(np.float32),
                                                               confidence=found.scores[mask], class_id=found.class_ids[mask]))
            centres.append((out.xyxy[:, :2] + out.xyxy[:, 2:]) / 2)
            ids.append(out.tracker_id.astype(np.int64) * 10 + cls)
        return np.concatenate(centres), np.concatenate(ids)

    return step


def norfair_tracker() -> Step:
    import norfair

    tracker = norfair.Tracker(distance_function="euclidean", distance_threshold=20, hit_counter_max=5, initialization_delay=0)

    def step(found: Detections) -> tuple[np.ndarray, np.ndarray]:
        centres = (found.xyxy[:, :2] + found.xyxy[:, 2:]) / 2
        detections = [norfair.Detection(c[None, :], label=int(k)) for c, k in zip(centres, found.class_ids, strict=True)]
        objects = tracker.update(detections)
        index = {id(d): i for i, d in enumerate(detections)}
        pairs = [(index[id(o.last_detection)], o.id) for o in objects if id(o.last_detection) in index]
        rows = [p[0] for p in pairs]
        return centres[rows].reshape(-1, 2), np.array([p[1] for p in pairs], np.int64)

    return step


CANDIDATES: dict[str, Callable[[], Step]] = {"FieldTracker (ours)": field_tracker, "ByteTrack (supervision 0.25.1)": bytetrack,
                                             "norfair 2.3.0": norfair_tracker}


def evaluate(frames: list[SimFrame], make: Callable[[], Step]) -> dict[str, float]:
    import motmetrics as mm

    step = make()
    acc = mm.MOTAccumulator(auto_id=True)
    cpu = 0.0
    seen: dict[int, int] = {}
    for frame in frames:
        start = time.process_time()
        centres, ids = step(frame.detections)
        cpu += time.process_time() - start
        truth = (frame.truth.xyxy[:, :2] + frame.truth.xyxy[:, 2:]) / 2
        acc.update(frame.truth_ids.tolist(), ids.tolist(), mm.distances.norm2squared_matrix(truth, centres, max_d2=MATCH_PX**2))
        for tid in ids.tolist():
            seen[tid] = seen.get(tid, 0) + 1
    summary = mm.metrics.create().compute(acc, metrics=["mota", "idf1", "num_switches", "num_unique_objects"], name="x")
    row = summary.loc["x"]
    return {"mota": float(row["mota"]), "idf1": float(row["idf1"]),
            "switches_per_100": 100.0 * float(row["num_switches"]) / max(1.0, float(row["num_unique_objects"])),
            "tracks": float(sum(1 for n in seen.values() if n >= MIN_FRAMES)), "ms": 1000 * cpu / len(frames)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--jitter", type=float, default=0.7, help="box edge noise of the imitated detector, px")
    parser.add_argument("--miss", type=float, default=0.03, help="share of objects the imitated detector misses")
    args = parser.parse_args()
    noise = DetectorNoise(args.jitter, args.miss, args.seed)
    print(f"{args.frames} frames per sequence at {FPS:g} FPS, seed {args.seed}, detector jitter {args.jitter:g} px, "
          f"{100 * args.miss:g} % missed; CPU ms per frame; "
          f"tracks = ids seen >= {MIN_FRAMES} frames vs the true objects seen >= {MIN_FRAMES} frames")
    for name, options in SEQUENCES.items():
        frames = list(sequence(SyntheticConfig(seed=args.seed, **options), args.frames, FPS, noise))
        labelled = [(f.truth.class_ids, f.truth_ids) for f in frames]
        truth = sum(true_unique(labelled, c, MIN_FRAMES) for c in range(3))
        per_frame = np.mean([len(f.detections) for f in frames])
        print(f"\n{name}: {per_frame:.0f} detections/frame, {truth} true tracks")
        print(f"  {'tracker':32s} {'MOTA':>6s} {'IDF1':>6s} {'IDsw/100':>9s} {'tracks':>7s} {'ms/frame':>9s}")
        for label, make in CANDIDATES.items():
            try:
                r = evaluate(frames, make)
            except ImportError as exc:
                print(f"  {label:32s} not installed here ({exc.name}); see this script's docstring")
                continue
            print(f"  {label:32s} {r['mota']:6.3f} {r['idf1']:6.3f} {r['switches_per_100']:9.1f} "
                  f"{r['tracks']:7.0f} {r['ms']:9.3f}")


if __name__ == "__main__":
    main()
