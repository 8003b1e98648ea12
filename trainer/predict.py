"""Running the inference model on whole frames the way the device does, and scoring the result.

Frames are resized by the bundle's one scale and padded or cut into tiles (`resize: tile`,
trainer/tiling.py), or, for bundles written before that, stretched to the network input
(`resize: stretch`); boxes come back in frame pixels, so validation numbers are what the device
will actually see.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from device.inference.preprocess import resize_to
from trainer.augment import normalize
from trainer.counts import (
    adopted_count_models,
    count_agreement,
    estimate_agreement,
    estimated_counts,
    fit_class_thresholds,
    fit_count_models,
    keep_above,
    threshold_vector,
)
from trainer.dataset import Sample
from trainer.metrics import Boxes, best_f1_threshold, coco_map, collect_matches
from trainer.tiling import TileLayout, TilePolicy, cut_tiles, merge_tiles, sample_scale

FITTED = "fitted on these images to minimise the count error per class"
GIVEN = "the bundle's (what the device uses)"

Resize = TilePolicy | tuple[int, int]  # a tile policy, or the (height, width) old bundles stretch to
_SCORE_FLOOR = 1e-3  # tiled frames: detections below this add nothing measurable to mAP


def frame_max_detections(resize: Resize, per_pass: int) -> int:
    """Most detections one frame can have: a tiled frame merges up to max_tiles passes."""
    return per_pass * (resize.max_tiles if isinstance(resize, TilePolicy) else 1)


def prepare_input(image: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """RGB uint8 frame -> normalised network input [h, w, 3] (stretch resize)."""
    h, w = input_hw
    return normalize(resize_to(image, (w, h)))  # the device's resize rule (device/inference/preprocess.py)


Runner = Callable[[np.ndarray], Mapping[str, object]]


def keras_runner(model: object) -> Runner:
    return lambda x: model(x, training=False)  # type: ignore[operator]


def predict(model: Runner, samples: list[Sample], resize: Resize, batch: int = 4, trained_um: float | None = None) -> list[Boxes]:
    """Detector outputs (Keras or ONNX runner) for each sample, boxes in the sample's own pixels.

    `trained_um`: the card's input.um_per_pixel; a calibrated sample of another µm per pixel runs
    at the scale the device would give it (tiling.sample_scale)."""
    if isinstance(resize, TilePolicy):
        return _predict_tiled(model, samples, resize, batch, trained_um)
    results: list[Boxes] = []
    for start in range(0, len(samples), batch):
        chunk = samples[start : start + batch]
        x = np.stack([prepare_input(s.image, resize) for s in chunk])
        out: Mapping[str, object] = model(x)
        for i, sample in enumerate(chunk):
            sy = sample.image.shape[0] / resize[0]
            sx = sample.image.shape[1] / resize[1]
            boxes = np.asarray(out["boxes"], np.float64)[i] * np.array([sx, sy, sx, sy])
            scores = np.asarray(out["scores"], np.float64)[i]
            results.append(Boxes(boxes, scores, np.asarray(out["classes"])[i].astype(int)))
    return results


def _predict_tiled(model: Runner, samples: list[Sample], policy: TilePolicy, batch: int, trained_um: float | None) -> list[Boxes]:
    """Tiles of every frame, run `batch` at a time across frames, merged back per frame."""
    policies = [replace(policy, scale=sample_scale(policy.scale, s.um_per_pixel, trained_um)) for s in samples]
    cuts: list[tuple[np.ndarray, TileLayout]] = [cut_tiles(s.image, p) for s, p in zip(samples, policies, strict=True)]
    flat = [(i, t) for i, (tiles, _) in enumerate(cuts) for t in range(len(tiles))]
    outputs: dict[str, list[np.ndarray]] = {"boxes": [], "scores": [], "classes": []}
    for start in range(0, len(flat), batch):
        x = np.stack([normalize(cuts[i][0][t]) for i, t in flat[start : start + batch]])
        out = model(x)
        for key in outputs:
            outputs[key].extend(np.asarray(out[key]))  # type: ignore[call-overload]
    results: list[Boxes] = []
    first = 0
    for (tiles, layout), frame_policy in zip(cuts, policies, strict=True):
        part = {k: v[first : first + len(tiles)] for k, v in outputs.items()}
        first += len(tiles)
        live = [np.asarray(s) >= _SCORE_FLOOR for s in part["scores"]]  # the K-row tails are ~0: skip merging them
        kept = {k: [v[m] for v, m in zip(part[k], live, strict=True)] for k in outputs}
        xyxy, scores, classes = merge_tiles(kept["boxes"], kept["scores"], kept["classes"], layout, frame_policy)
        results.append(Boxes(xyxy, scores, classes.astype(int)))
    return results


def first_tiles(samples: list[Sample], resize: Resize) -> np.ndarray:
    """One normalised network input per sample (its first tile): ONNX parity and int8 calibration."""
    if isinstance(resize, TilePolicy):
        return np.stack([normalize(cut_tiles(s.image, resize)[0][0]) for s in samples])
    return np.stack([prepare_input(s.image, resize) for s in samples])


def truth_of(samples: list[Sample]) -> list[Boxes]:
    return [Boxes.truth(s.boxes, s.classes) for s in samples]


def operating_point(truth: list[Boxes], kept: list[Boxes], n_classes: int, max_dets: int) -> dict[str, float]:
    """Precision, recall and F1 at IoU 0.5 of detections already thresholded, all classes pooled."""
    parts = [collect_matches(truth, kept, c, max_dets) for c in range(n_classes)]
    tp = int(sum(int(p.matched[0].sum()) for p in parts))
    found, n_truth = sum(len(p.scores) for p in parts), sum(p.n_truth for p in parts)
    precision = tp / found if found else 0.0
    recall = tp / n_truth if n_truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def evaluate_predictions(samples: list[Sample], preds: list[Boxes], classes: list[str], max_dets: int = 100,
                         thresholds: Mapping[str, float] | None = None,
                         count_models: Mapping[str, Any] | None = None) -> dict[str, object]:
    """Everything the lab asks about: mAP, then precision/recall and count agreement per class at
    the thresholds the device will use.

    With `thresholds` None (training) the per-class thresholds are fitted here to minimise the
    count error, and `thresholds_from` says so; given (a bundle's), they are used as they are.
    Likewise the dense-frame count corrections: fitted with the thresholds (`count_model_fit`, the
    adopted ones in `count_models`), or the bundle's `count_models` as given; where there are any,
    `count_estimate_error` scores the corrected counts the device reports as `count_estimate`.
    """
    truth = truth_of(samples)
    maps = coco_map(truth, preds, classes, max_dets)
    f1_best = best_f1_threshold(truth, preds, len(classes), max_dets)["threshold"]
    if thresholds is None:
        chosen, source = fit_class_thresholds(truth, preds, classes, f1_best), FITTED
    else:
        chosen, source = {name: float(thresholds[name]) for name in classes}, GIVEN
    kept = keep_above(preds, threshold_vector(classes, chosen, f1_best))
    shapes = [(int(s.image.shape[0]), int(s.image.shape[1])) for s in samples]
    fit = fit_count_models(truth, kept, classes, shapes) if thresholds is None else None
    models = adopted_count_models(fit) if fit is not None else (dict(count_models) if count_models else None)
    extra: dict[str, object] = {"count_models": models}
    if fit is not None:
        extra["count_model_fit"] = fit
    if models:
        extra["count_estimate_error"] = estimate_agreement(truth, estimated_counts(kept, shapes, classes, models), classes)
    return {
        "map50": maps["map50"],
        "map50_95": maps["map50_95"],
        "per_class": maps["per_class"],
        "score_threshold": f1_best,
        "class_thresholds": chosen,
        "thresholds_from": source,
        **operating_point(truth, kept, len(classes), max_dets),
        "count_error": count_agreement(truth, kept, classes),
        "val_images": len(samples),
        "val_objects": int(sum(len(s.boxes) for s in samples)),
        **extra,
    }
