"""The baseline a bundle carries for the device's drift alarms: what the model kept on its
validation frames (objects per frame and per class, size in px and µm, score, class mix).

Written into model.json `metrics["baseline"]` (a free-form section, so devices that predate it
still load the bundle). The format is the device's (device/drift/baseline.py, docs/drift.md);
the trainer writes it with its own code, as it never imports `device`, and
tests/trainer/test_baseline.py checks that the device's parser accepts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from trainer.metrics import Boxes

BASELINE_FORMAT = "scopehive-baseline"
BINS = 10


def _histogram(values: np.ndarray) -> dict[str, Any] | None:
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    cuts = np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(cuts, values, side="right"), minlength=len(cuts) + 1)
    p10, median, p90 = np.quantile(values, [0.1, 0.5, 0.9])
    return {"cuts": [float(c) for c in cuts], "counts": [int(c) for c in counts], "median": float(median),
            "p10": float(p10), "p90": float(p90)}


def _sides(xyxy: np.ndarray) -> np.ndarray:
    wh = np.clip(np.asarray(xyxy, np.float64).reshape(-1, 4)[:, 2:] - np.asarray(xyxy, np.float64).reshape(-1, 4)[:, :2], 0, None)
    return np.sqrt(wh[:, 0] * wh[:, 1])


def baseline_of(kept: Sequence[Boxes], classes: Sequence[str], source: str, note: str,
                um_per_pixel: Sequence[float | None] | None = None) -> dict[str, Any]:
    """The baseline of `kept` (each frame's detections at the thresholds the device uses)."""
    if not kept:
        raise ValueError("a baseline needs at least one frame")
    counts = np.array([len(b.scores) for b in kept], np.float64)
    ids = np.concatenate([np.asarray(b.classes, np.int64) for b in kept])
    by_class = np.bincount(np.clip(ids, 0, len(classes) - 1), minlength=len(classes)).astype(np.float64)
    sides = [_sides(b.xyxy) for b in kept]
    ums = list(um_per_pixel or [None] * len(kept))
    um_sides = [s * um for s, um in zip(sides, ums, strict=True) if um]
    p10, median, p90 = np.quantile(counts, [0.1, 0.5, 0.9])
    total = float(by_class.sum())
    return {
        "format": BASELINE_FORMAT, "version": 1, "source": source, "note": note, "frames": len(kept), "objects": int(total),
        "objects_per_frame": {"mean": float(counts.mean()), "median": float(median), "p10": float(p10), "p90": float(p90)},
        "objects_per_frame_by_class": {name: float(by_class[i] / len(kept)) for i, name in enumerate(classes)},
        "class_mix": {name: float(by_class[i] / total) if total else 0.0 for i, name in enumerate(classes)},
        "size_px": _histogram(np.concatenate(sides)),
        "size_um": _histogram(np.concatenate(um_sides)) if um_sides else None,
        "score": _histogram(np.concatenate([np.asarray(b.scores, np.float64) for b in kept])),
    }


def sample_um_per_pixel(samples: Sequence[object]) -> list[float | None]:
    """Each sample's µm per pixel where its package said (None elsewhere)."""
    return [getattr(s, "um_per_pixel", None) for s in samples]
