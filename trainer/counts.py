"""Counts a microscopist can trust: per-class score thresholds fitted to count error, and the
agreement between counted and true numbers per image (Bland-Altman, exact share, MAE).

Why a threshold per class fitted to counts, not one F1-best threshold: a lab reads counts first,
and classes differ in how confident the model is (a large white cell scores 0.9, a platelet 0.4).
The F1-best threshold balances matches over all classes at once and leaves each class's count
biased; the count-best threshold per class makes the number of objects found per image agree
with the number labelled, which is what the device reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from trainer.metrics import Boxes

# Candidate thresholds: fine enough to resolve a count, coarse enough not to chase single scores
# of a small validation split (the fitted value is the middle of the best plateau on this grid).
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
_LOA_Z = 1.96  # Bland-Altman limits of agreement: bias +- 1.96 standard deviations


def class_counts(boxes: Sequence[Boxes], cls: int, threshold: float | None = None) -> np.ndarray:
    """Objects of class `cls` per image (truth: threshold None; predictions: scores >= threshold)."""
    if threshold is None:
        return np.array([int((b.classes == cls).sum()) for b in boxes], np.int64)
    return np.array([int(((b.classes == cls) & (b.scores >= threshold)).sum()) for b in boxes], np.int64)


def _counts_on_grid(preds: Sequence[Boxes], cls: int) -> np.ndarray:
    """[images, grid] predicted count of `cls` at every candidate threshold."""
    rows = []
    for dt in preds:
        scores = np.sort(dt.scores[dt.classes == cls])
        rows.append(len(scores) - np.searchsorted(scores, THRESHOLD_GRID, side="left"))
    return np.array(rows, np.int64).reshape(len(preds), len(THRESHOLD_GRID))


def fit_count_threshold(truth: Sequence[Boxes], preds: Sequence[Boxes], cls: int, fallback: float) -> float:
    """Threshold minimising the mean absolute count error of one class over the images.

    Ties (a plateau of equally good thresholds, common on small splits) resolve to the middle of
    the plateau nearest `fallback`, which keeps the choice away from a knife edge. A class without
    any labelled object and any detection keeps `fallback`.
    """
    true = class_counts(truth, cls)
    grid_counts = _counts_on_grid(preds, cls)
    if not true.any() and not grid_counts.any():
        return float(fallback)
    mae = np.abs(grid_counts - true[:, None]).mean(axis=0)
    best = np.flatnonzero(mae <= mae.min() + 1e-9)
    runs = np.split(best, np.flatnonzero(np.diff(best) > 1) + 1)  # contiguous plateaus
    centres = [float(THRESHOLD_GRID[run].mean()) for run in runs]
    return min(centres, key=lambda c: abs(c - fallback))


def fit_class_thresholds(truth: Sequence[Boxes], preds: Sequence[Boxes], classes: Sequence[str], fallback: float) -> dict[str, float]:
    """Count-best threshold for every class (see `fit_count_threshold`)."""
    return {name: round(fit_count_threshold(truth, preds, cls, fallback), 3) for cls, name in enumerate(classes)}


def threshold_vector(classes: Sequence[str], class_thresholds: Mapping[str, float] | None, default: float) -> np.ndarray:
    """Per-class thresholds as an array indexed by class id; classes not listed use `default`."""
    given = class_thresholds or {}
    return np.array([float(given.get(name, default)) for name in classes], np.float64)


def keep_above(preds: Sequence[Boxes], thresholds: np.ndarray) -> list[Boxes]:
    """Each image's detections at or above their own class's threshold (what the device keeps)."""
    out = []
    for dt in preds:
        keep = dt.scores >= thresholds[np.clip(dt.classes, 0, len(thresholds) - 1)]
        out.append(Boxes(dt.xyxy[keep], dt.scores[keep], dt.classes[keep]))
    return out


def agreement(true: np.ndarray, found: np.ndarray) -> dict[str, float | None]:
    """Per-image count agreement: MAE, share exact, Bland-Altman bias and 95 % limits."""
    diff = found.astype(np.float64) - true.astype(np.float64)
    if not len(diff):
        return {"mae": 0.0, "exact_share": None, "bias": None, "loa_low": None, "loa_high": None, "mean_relative_error": None,
                **relative_errors(true, found)}
    spread = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
    bias = float(diff.mean())
    has = true > 0
    return {
        "mae": float(np.abs(diff).mean()),
        "exact_share": float((diff == 0).mean()),
        "bias": bias,
        "loa_low": bias - _LOA_Z * spread,
        "loa_high": bias + _LOA_Z * spread,
        "mean_relative_error": float((np.abs(diff[has]) / true[has]).mean()) if has.any() else None,
        **relative_errors(true, found),
    }


def relative_errors(true: np.ndarray, found: np.ndarray, within: float = 0.10) -> dict[str, float | None]:
    """The count error as a share of the true count, with its spread, over images that have objects:
    median and 90th percentile of |found - true| / true, and the share of all images counted within
    `within` of the truth (an image without objects is within only when none were found)."""
    true, found = true.astype(np.float64), found.astype(np.float64)
    if not len(true):
        return {"relative_error_median": None, "relative_error_p90": None, "within_10pct_share": None}
    has = true > 0
    rel = np.abs(found[has] - true[has]) / true[has]
    close = np.where(has, np.abs(found - true) <= within * np.maximum(true, 1e-12), found == 0)
    return {"relative_error_median": float(np.median(rel)) if len(rel) else None,
            "relative_error_p90": float(np.percentile(rel, 90)) if len(rel) else None,
            "within_10pct_share": float(close.mean())}


def count_agreement(truth: Sequence[Boxes], kept: Sequence[Boxes], classes: Sequence[str]) -> dict[str, object]:
    """Agreement per class and over all classes, from detections already thresholded."""
    per_class = {name: agreement(class_counts(truth, c), class_counts(kept, c, 0.0)) for c, name in enumerate(classes)}
    true_total = np.array([len(b.classes) for b in truth], np.int64)
    found_total = np.array([len(b.classes) for b in kept], np.int64)
    overall = agreement(true_total, found_total)
    return {"total_mae": overall["mae"], "total_exact_share": overall["exact_share"],
            "total_relative_error_median": overall["relative_error_median"],
            "total_relative_error_p90": overall["relative_error_p90"], "total_within_10pct_share": overall["within_10pct_share"],
            "per_class": per_class}


def count_pairs(truth: Sequence[Boxes], kept: Sequence[Boxes], cls: int) -> tuple[np.ndarray, np.ndarray]:
    """(true, found) counts per image for one class: what the scatter and Bland-Altman plots draw."""
    return class_counts(truth, cls), class_counts(kept, cls, 0.0)
