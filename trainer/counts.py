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
from typing import Any

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
    found = {name: class_counts(kept, c, 0.0) for c, name in enumerate(classes)}
    return _agreement_by_class(truth, found, classes)


def _agreement_by_class(truth: Sequence[Boxes], found: Mapping[str, np.ndarray], classes: Sequence[str]) -> dict[str, object]:
    """agreement per class of `found` (per image) with the labels, and of their sum over classes."""
    per_class = {name: agreement(class_counts(truth, c), found[name]) for c, name in enumerate(classes)}
    true_total = np.array([len(b.classes) for b in truth], np.int64)
    overall = agreement(true_total, np.sum([found[name] for name in classes], axis=0))
    return {"total_mae": overall["mae"], "total_exact_share": overall["exact_share"],
            "total_relative_error_median": overall["relative_error_median"],
            "total_relative_error_p90": overall["relative_error_p90"], "total_within_10pct_share": overall["within_10pct_share"],
            "per_class": per_class}


def count_pairs(truth: Sequence[Boxes], kept: Sequence[Boxes], cls: int) -> tuple[np.ndarray, np.ndarray]:
    """(true, found) counts per image for one class: what the scatter and Bland-Altman plots draw."""
    return class_counts(truth, cls), class_counts(kept, cls, 0.0)


# A count correction is adopted only where it measured clearly better than counting boxes, on
# enough images to say so: leave-one-out, so the frame scored never helped fit its own correction.
COUNT_MODEL_MIN_IMAGES = 6  # validation images holding the class (a 45-frame package validates on ~7)
COUNT_MODEL_GAIN = 0.10  # at least 10 % lower leave-one-out MAE than the plain box count ...
COUNT_MODEL_MIN_GAIN = 0.1  # ... and at least 0.1 objects per image
_K_RANGE = {"ratio": (0.5, 3.0), "coverage": (-1.0, 20.0)}


def image_coverage(kept: Sequence[Boxes], shapes: Sequence[tuple[int, int]]) -> np.ndarray:
    """Each image's box coverage (device.models.bundle.box_coverage) over all kept boxes."""
    from device.models.bundle import box_coverage

    return np.array([box_coverage(b.xyxy, h, w) for b, (h, w) in zip(kept, shapes, strict=True)], np.float64)


def _fit_k(method: str, true: np.ndarray, found: np.ndarray, cover: np.ndarray) -> float:
    """Least squares of `true` on the method's estimate (through 0: no boxes, no objects)."""
    x = found.astype(np.float64) if method == "ratio" else found * cover
    y = true.astype(np.float64) if method == "ratio" else true - found
    denom = float((x * x).sum())
    k = float((x * y).sum()) / denom if denom > 0 else (1.0 if method == "ratio" else 0.0)
    low, high = _K_RANGE[method]
    return float(np.clip(k, low, high))


def _estimate(method: str, k: float, found: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """Whole objects, as the device reports them (CountModel.estimate, rounded)."""
    return np.round(np.maximum(0.0, found * (k if method == "ratio" else 1.0 + k * cover)))


def _loo_mae(method: str, true: np.ndarray, found: np.ndarray, cover: np.ndarray) -> float:
    errors = []
    for i in range(len(true)):
        rest = np.arange(len(true)) != i
        k = _fit_k(method, true[rest], found[rest], cover[rest])
        errors.append(abs(float(_estimate(method, k, found[i:i + 1], cover[i:i + 1])[0]) - float(true[i])))
    return float(np.mean(errors))


def fit_count_model(true: np.ndarray, found: np.ndarray, cover: np.ndarray) -> dict[str, object]:
    """The count estimate of one class: the card's `CountModel` fields with `adopted` True where a
    correction measured better than box counting (see the constants above), else the reason.

    `true`/`found` are the labelled and kept-box counts per validation image, `cover` each image's
    box coverage. Both candidates (`ratio`, `coverage`) are scored by leave-one-out MAE."""
    has = true > 0
    images = int(has.sum())
    plain = float(np.abs(found - true).mean()) if len(true) else 0.0
    if images < COUNT_MODEL_MIN_IMAGES:
        return {"adopted": False, "reason": f"{images} validation images hold the class; a correction needs "
                                            f"{COUNT_MODEL_MIN_IMAGES}", "loo_mae_boxes": plain}
    scored = {m: _loo_mae(m, true, found, cover) for m in ("ratio", "coverage")}
    method = min(scored, key=scored.__getitem__)
    best = scored[method]
    fields: dict[str, object] = {"method": method, "k": round(_fit_k(method, true, found, cover), 4), "loo_mae_boxes": round(plain, 4),
                                 "loo_mae": round(best, 4), "images": len(true)}
    if best > plain * (1 - COUNT_MODEL_GAIN) or plain - best < COUNT_MODEL_MIN_GAIN:
        return {**fields, "adopted": False,
                "reason": f"{method} counts measured {best:.2f} vs {plain:.2f} per image counting boxes (leave-one-out): not "
                          f"{COUNT_MODEL_GAIN:.0%} better, so boxes are counted"}
    return {**fields, "adopted": True, "reason": f"{method} counts measured {best:.2f} vs {plain:.2f} per image counting boxes "
                                                 "(leave-one-out on validation)"}


def fit_count_models(truth: Sequence[Boxes], kept: Sequence[Boxes], classes: Sequence[str],
                     shapes: Sequence[tuple[int, int]]) -> dict[str, dict[str, object]]:
    """fit_count_model for every class, from detections already at the count-best thresholds."""
    cover = image_coverage(kept, shapes)
    return {name: fit_count_model(*count_pairs(truth, kept, c), cover) for c, name in enumerate(classes)}


def adopted_count_models(fitted: Mapping[str, Mapping[str, object]]) -> dict[str, dict[str, object]] | None:
    """The card's count_models: the adopted corrections, without the fitting's notes (None if none)."""
    keep = ("method", "k", "loo_mae_boxes", "loo_mae", "images")
    chosen = {name: {key: m[key] for key in keep} for name, m in fitted.items() if m.get("adopted")}
    return chosen or None


def estimated_counts(kept: Sequence[Boxes], shapes: Sequence[tuple[int, int]], classes: Sequence[str],
                     models: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    """Per class, each image's count as the device reports it in `count_estimate` (the box count
    for classes without a correction)."""
    from device.models.bundle import CountModel

    cover = image_coverage(kept, shapes)
    out = {}
    for c, name in enumerate(classes):
        found = class_counts(kept, c, 0.0).astype(np.float64)
        model = (models or {}).get(name)
        if model is None:
            out[name] = found
            continue
        model = model if isinstance(model, CountModel) else CountModel.model_validate(model)
        out[name] = np.array([round(model.estimate(int(n), float(v))) for n, v in zip(found, cover, strict=True)], np.float64)
    return out


def estimate_agreement(truth: Sequence[Boxes], estimates: Mapping[str, np.ndarray], classes: Sequence[str]) -> dict[str, object]:
    """count_agreement's figures for the corrected counts (`estimated_counts`), per class and in all."""
    return _agreement_by_class(truth, estimates, classes)
