"""Benchmark: the tracking figures with the real demo model instead of imitated detections.

The tests check unique counts, swimmer speeds and crossings on the synthetic truth with a
jittered, lossy imitation of a detector (device/tracking/simulate.py); this runs the committed
demo model on the rendered frames (640x480, its native scale) and prints the same figures
against the same truth: unique cells vs true cells, median swimmer speed vs the set speed,
line crossings vs the objects that truly crossed (with the count's 95 % Poisson interval).

    PYTHONPATH=. python bench/tracking_accuracy.py [--frames 150]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from device_common import bench_bundle

from device.detections import Detections
from device.inference.detector import load_detector
from device.sources.synthetic import SyntheticConfig, SyntheticFrame, SyntheticMicroscope
from device.tracking.concentration import poisson_interval
from device.tracking.motility import records
from device.tracking.settings import TrackingSettings
from device.tracking.simulate import true_unique
from device.tracking.stage import TrackingStage
from device.tracking.tracker import FieldTracker

FPS = 15.0
SIZE = {"width": 640, "height": 480}


def detected(config: SyntheticConfig, frames: int) -> Iterator[tuple[SyntheticFrame, Detections]]:
    bundle, _ = bench_bundle()
    detector = load_detector(bundle, "auto", Path(tempfile.mkdtemp()))
    scope = SyntheticMicroscope(config)
    for _ in range(frames):
        frame = scope.read()
        yield frame, detector.detect(frame.image)


def unique_cells(frames: int) -> None:
    settings = TrackingSettings()
    tracker = FieldTracker(settings)
    unique = np.zeros(3, int)
    truth = []
    for i, (frame, found) in enumerate(detected(SyntheticConfig(seed=11, density=60, drift=1.0, **SIZE), frames)):
        truth.append((frame.truth.class_ids, frame.truth_ids))
        np.add.at(unique, tracker.update(found, i / FPS).confirmed, 1)
    for cid, name in enumerate(("cell", "crystal", "debris")):
        expected = true_unique(truth, cid, settings.min_frames)
        print(f"  unique {name}: {unique[cid]} tracked vs {expected} true ({100 * (unique[cid] - expected) / max(expected, 1):+.1f} %)")


def swimmer_speed(frames: int, speed: float) -> None:
    tracker = FieldTracker(TrackingSettings(min_frames=10))
    ended = [tracker.update(found, i / FPS).ended
             for i, (_, found) in enumerate(detected(SyntheticConfig(seed=5, density=60, motion="swim", swim_speed=speed, **SIZE), frames))]
    tracks = records(np.concatenate([*ended, tracker.close()]))
    cells = [r.speed_px_s for r in tracks if r.class_id == 0]
    median = float(np.median(cells)) if cells else float("nan")
    print(f"  median swimmer speed: {median:.1f} px/s vs set {speed * FPS:.1f} px/s ({100 * (median / (speed * FPS) - 1):+.1f} %), "
          f"{len(cells)} cell tracks")


def crossings(frames: int) -> None:
    stage = TrackingStage(TrackingSettings(line=(320, 0, 320, 480), subtract_drift=False), None)
    last_x: dict[int, float] = {}
    crossed: set[int] = set()
    config = SyntheticConfig(seed=2, density=150, motion="flow", flow_speed=5.0, drift=0.0, **SIZE)
    for i, (frame, found) in enumerate(detected(config, frames)):
        centres = (frame.truth.xyxy[:, 0] + frame.truth.xyxy[:, 2]) / 2
        for oid, x in zip(frame.truth_ids.tolist(), centres.tolist(), strict=True):
            if last_x.get(oid, x) < 320 <= x:
                crossed.add(oid)
            last_x[oid] = x
        stage.update(found, i / FPS, frame.image.shape[:2], "demo", ("cell", "crystal", "debris"), {})
    counted = stage.live().get("crossed_forward", 0)
    low, high = poisson_interval(counted)
    inside = "inside" if low <= len(crossed) <= high else "OUTSIDE"
    print(f"  line crossings: {counted} counted, 95 % interval {low:.1f}-{high:.1f}; {len(crossed)} truly crossed ({inside})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args()
    print(f"model: {bench_bundle()[1]}; {args.frames} frames per sequence, 640x480, {FPS:g} FPS")
    print("cells at demo density, stage drift 1 px/frame:")
    unique_cells(args.frames)
    print("directed swimmers (cells) at 3 px/frame, drift 0.4:")
    swimmer_speed(args.frames, 3.0)
    print("laminar channel flow, 5 px/frame on the centreline, line across the channel:")
    crossings(args.frames)


if __name__ == "__main__":
    main()
