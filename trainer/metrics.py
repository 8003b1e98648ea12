"""COCO-style detection metrics and count errors, in plain numpy.

Our own implementation (rather than pycocotools at run time) keeps the trainer free of a C
extension on Jetsons; it follows COCOeval's bbox protocol step by step (greedy matching by score,
101-point interpolated precision, at most `max_dets` detections per image and class) and the
tests check it agrees with COCOeval to within 0.001 on real predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device.detections import iou_matrix  # one IoU for the device and the trainer

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class Boxes:
    """Boxes of one image: xyxy pixels, scores (ones for ground truth), class indices."""

    xyxy: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    @classmethod
    def truth(cls, xyxy: np.ndarray, classes: np.ndarray) -> Boxes:
        return cls(np.asarray(xyxy, np.float64).reshape(-1, 4), np.ones(len(classes)), np.asarray(classes))


def match_image(dt: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """[T, D] bool: is detection d (sorted by score) a true positive at IoU threshold t.

    Each detection takes the still-unmatched ground truth it overlaps most (ties: the later one),
    exactly as COCOeval.evaluateImg does for non-crowd boxes.
    """
    ious = iou_matrix(dt, gt)
    matched = np.zeros((len(IOU_THRESHOLDS), len(dt)), bool)
    for t, threshold in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(len(gt), bool)
        floor = min(threshold, 1 - 1e-10)
        for d in range(len(dt)):
            free = np.where(taken, -1.0, ious[d])
            if not len(free) or free.max() < floor:
                continue
            best = len(free) - 1 - int(np.argmax(free[::-1]))  # last of equal maxima, as COCOeval
            taken[best] = True
            matched[t, d] = True
    return matched


def interpolated_precision(tp: np.ndarray, n_truth: int) -> np.ndarray:
    """101-point precision envelope for one class and IoU threshold (tp sorted by score)."""
    tps = np.cumsum(tp).astype(float)
    fps = np.cumsum(~tp).astype(float)
    recall = tps / n_truth
    precision = tps / (tps + fps + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    index = np.searchsorted(recall, RECALL_POINTS, side="left")
    out = np.zeros(len(RECALL_POINTS))
    valid = index < len(precision)
    out[valid] = precision[index[valid]]
    return out


@dataclass(frozen=True)
class ClassMatches:
    scores: np.ndarray  # [D] detection scores, all images
    matched: np.ndarray  # [T, D]
    n_truth: int


def collect_matches(truth: list[Boxes], preds: list[Boxes], cls: int, max_dets: int) -> ClassMatches:
    scores, matched, n_truth = [], [], 0
    for gt, dt in zip(truth, preds, strict=True):
        gt_boxes = gt.xyxy[gt.classes == cls]
        keep = dt.classes == cls
        order = np.argsort(-dt.scores[keep], kind="mergesort")[:max_dets]
        dt_boxes, dt_scores = dt.xyxy[keep][order], dt.scores[keep][order]
        n_truth += len(gt_boxes)
        scores.append(dt_scores)
        matched.append(match_image(dt_boxes, gt_boxes))
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    all_matched = np.concatenate(matched, axis=1) if matched else np.zeros((len(IOU_THRESHOLDS), 0), bool)
    order = np.argsort(-all_scores, kind="mergesort")
    return ClassMatches(all_scores[order], all_matched[:, order], n_truth)


def average_precision(matches: ClassMatches) -> np.ndarray | None:
    """AP per IoU threshold [T], or None for a class without ground truth (COCO skips those)."""
    if matches.n_truth == 0:
        return None
    return np.array([interpolated_precision(m, matches.n_truth).mean() for m in matches.matched])


def coco_map(truth: list[Boxes], preds: list[Boxes], classes: list[str], max_dets: int = 100) -> dict[str, object]:
    """mAP@0.5 and mAP@[.5:.95], overall and per class (None where a class has no ground truth)."""
    per_class: dict[str, dict[str, float | None]] = {}
    aps = []
    for cls, name in enumerate(classes):
        ap = average_precision(collect_matches(truth, preds, cls, max_dets))
        per_class[name] = {"map50": None if ap is None else float(ap[0]), "map50_95": None if ap is None else float(ap.mean())}
        if ap is not None:
            aps.append(ap)
    stacked = np.array(aps) if aps else np.zeros((0, len(IOU_THRESHOLDS)))
    return {
        "map50": float(stacked[:, 0].mean()) if aps else 0.0,
        "map50_95": float(stacked.mean()) if aps else 0.0,
        "per_class": per_class,
    }


def best_f1_threshold(truth: list[Boxes], preds: list[Boxes], n_classes: int, max_dets: int = 100) -> dict[str, float]:
    """Score threshold maximising F1 at IoU 0.5 over all classes, with its precision and recall."""
    parts = [collect_matches(truth, preds, c, max_dets) for c in range(n_classes)]
    scores = np.concatenate([p.scores for p in parts])
    tp = np.concatenate([p.matched[0] for p in parts])
    n_truth = sum(p.n_truth for p in parts)
    if not len(scores) or n_truth == 0:
        return {"threshold": 0.5, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    order = np.argsort(-scores, kind="mergesort")
    scores, tp = scores[order], tp[order]
    tps = np.cumsum(tp)
    precision = tps / np.arange(1, len(tp) + 1)
    recall = tps / n_truth
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1))
    return {"threshold": float(scores[best]), "precision": float(precision[best]), "recall": float(recall[best]), "f1": float(f1[best])}


def count_errors(truth: list[Boxes], preds: list[Boxes], classes: list[str], threshold: float) -> dict[str, object]:
    """Per-image count error at the threshold: MAE and mean relative error (images with objects)."""
    per_class: dict[str, dict[str, float | None]] = {}
    diffs_total = []
    for gt, dt in zip(truth, preds, strict=True):
        diffs_total.append(abs(int((dt.scores >= threshold).sum()) - len(gt.classes)))
    for cls, name in enumerate(classes):
        n_gt = np.array([(gt.classes == cls).sum() for gt in truth], float)
        n_dt = np.array([((dt.classes == cls) & (dt.scores >= threshold)).sum() for dt in preds], float)
        err = np.abs(n_dt - n_gt)
        has = n_gt > 0
        per_class[name] = {
            "mae": float(err.mean()) if len(err) else 0.0,
            "mean_relative_error": float((err[has] / n_gt[has]).mean()) if has.any() else None,
        }
    return {"total_mae": float(np.mean(diffs_total)) if diffs_total else 0.0, "per_class": per_class}
