"""Seeded detection sequences with known identities: the ground truth of every tracking figure.

The synthetic microscope knows each object's id and box; a detector is imitated by jittering the
boxes and dropping a few, so tests and benchmarks measure the tracker and the statistics, not the
model (bench/tracking_compare.py can also run the real demo model on the rendered frames).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from device.detections import Detections
from device.sources.synthetic import SyntheticConfig, SyntheticMicroscope


@dataclass(frozen=True)
class DetectorNoise:
    """How far a detector's boxes stray from the truth."""

    jitter_px: float = 0.7  # sigma of each box edge
    miss_rate: float = 0.03  # share of true objects not detected in a frame
    seed: int = 0


@dataclass(frozen=True)
class SimFrame:
    index: int
    t: float  # seconds since the start at the configured frame rate
    detections: Detections  # what the imitated detector reports
    truth: Detections
    truth_ids: np.ndarray
    image: np.ndarray


def noisy(truth: Detections, rng: np.random.Generator, noise: DetectorNoise) -> Detections:
    """The truth as a detector would report it: edges jittered, some objects missed."""
    keep = rng.uniform(0, 1, len(truth)) >= noise.miss_rate
    xyxy = truth.xyxy[keep] + rng.normal(0, noise.jitter_px, (int(keep.sum()), 4)).astype(np.float32)
    xyxy[:, 2:] = np.maximum(xyxy[:, 2:], xyxy[:, :2] + 1)
    return Detections(xyxy, np.full(len(xyxy), 0.9, np.float32), truth.class_ids[keep])


def sequence(config: SyntheticConfig, frames: int, fps: float = 15.0, noise: DetectorNoise | None = None) -> Iterator[SimFrame]:
    """`frames` consecutive frames of one sample with imitated detections."""
    scope = SyntheticMicroscope(config)
    noise = noise or DetectorNoise()
    rng = np.random.default_rng(noise.seed)
    for i in range(frames):
        frame = scope.read()
        yield SimFrame(i, i / fps, noisy(frame.truth, rng, noise), frame.truth, frame.truth_ids, frame.image)


def true_unique(truth_frames: list[tuple[np.ndarray, np.ndarray]], class_id: int, min_frames: int) -> int:
    """Distinct objects of a class that were labelled in at least `min_frames` frames."""
    seen: dict[int, int] = {}
    for classes, ids in truth_frames:
        for oid in ids[classes == class_id].tolist():
            seen[oid] = seen.get(oid, 0) + 1
    return sum(1 for n in seen.values() if n >= min_frames)
