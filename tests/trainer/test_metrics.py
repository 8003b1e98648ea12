"""Our numpy mAP against pycocotools' COCOeval, and the operating-point and count metrics."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from trainer.metrics import Boxes, best_f1_threshold, coco_map, count_errors, iou_matrix

CLASSES = ["cell", "crystal", "debris"]


def cocoeval_stats(truth: list[Boxes], preds: list[Boxes], n_classes: int) -> tuple[float, float]:
    """(mAP@[.5:.95], mAP@0.5) from pycocotools on the same boxes."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, dets = [], [], []
    for image_id, (gt, dt) in enumerate(zip(truth, preds, strict=True), start=1):
        images.append({"id": image_id, "width": 1000, "height": 1000})
        for (x1, y1, x2, y2), cls in zip(gt.xyxy.tolist(), gt.classes.tolist(), strict=True):
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": int(cls) + 1,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
        for (x1, y1, x2, y2), score, cls in zip(dt.xyxy.tolist(), dt.scores.tolist(), dt.classes.tolist(), strict=True):
            dets.append({"image_id": image_id, "category_id": int(cls) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})
    gt_api = COCO()
    gt_api.dataset = {"images": images, "annotations": anns, "categories": [{"id": i + 1, "name": str(i)} for i in range(n_classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt_api.createIndex()
        dt_api = gt_api.loadRes(dets) if dets else COCO()
        evaluator = COCOeval(gt_api, dt_api, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0]), float(evaluator.stats[1])


def _noisy_predictions(truth: list[Boxes], rng: np.random.Generator) -> list[Boxes]:
    """Jittered true boxes (some missed, some class swaps) plus false alarms, with tied scores."""
    preds = []
    for gt in truth:
        keep = rng.random(len(gt.classes)) > 0.15
        boxes = gt.xyxy[keep] + rng.normal(0, 3, (int(keep.sum()), 4))
        boxes = np.concatenate([boxes[:, :2], np.maximum(boxes[:, 2:], boxes[:, :2] + 1)], axis=1)  # never inverted
        classes = np.where(rng.random(int(keep.sum())) < 0.1, (gt.classes[keep] + 1) % 3, gt.classes[keep])
        n_false = int(rng.integers(0, 4))
        corners = rng.uniform(0, 900, (n_false, 2))
        false = np.concatenate([corners, corners + rng.uniform(5, 60, (n_false, 2))], axis=1)
        scores = np.round(rng.uniform(0.05, 1, int(keep.sum()) + n_false), 1)  # rounding makes ties
        preds.append(Boxes(np.concatenate([boxes, false]), scores, np.concatenate([classes, rng.integers(0, 3, n_false)])))
    return preds


def _random_truth(rng: np.random.Generator, images: int) -> list[Boxes]:
    truth = []
    for _ in range(images):
        n = int(rng.integers(0, 15))
        corners = rng.uniform(0, 900, (n, 2))
        truth.append(Boxes.truth(np.concatenate([corners, corners + rng.uniform(6, 80, (n, 2))], axis=1), rng.integers(0, 3, n)))
    return truth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_matches_cocoeval_on_noisy_predictions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = _random_truth(rng, 25)
    preds = _noisy_predictions(truth, rng)
    ours = coco_map(truth, preds, CLASSES)
    theirs_5095, theirs_50 = cocoeval_stats(truth, preds, 3)
    assert abs(ours["map50"] - theirs_50) < 1e-3
    assert abs(ours["map50_95"] - theirs_5095) < 1e-3


def test_map_matches_cocoeval_on_real_model_predictions(trained_bundle, train_package) -> None:  # type: ignore[no-untyped-def]
    from trainer.bundle import read_card
    from trainer.dataset import load_dataset_package
    from trainer.export import onnx_runner
    from trainer.predict import predict, truth_of

    card = read_card(trained_bundle)
    samples = load_dataset_package(train_package).samples
    runner = onnx_runner((trained_bundle / "model.onnx").read_bytes())
    preds = predict(runner, samples, (card.input.height, card.input.width))
    ours = coco_map(truth_of(samples), preds, card.classes)
    theirs_5095, theirs_50 = cocoeval_stats(truth_of(samples), preds, len(card.classes))
    assert theirs_50 > 0.2  # real, non-trivial predictions
    assert abs(ours["map50"] - theirs_50) < 1e-3
    assert abs(ours["map50_95"] - theirs_5095) < 1e-3


def test_perfect_predictions_score_one_and_classes_without_truth_are_skipped() -> None:
    truth = [Boxes.truth(np.array([[0, 0, 10, 10], [20, 20, 40, 50]]), np.array([0, 1]))]
    perfect = [Boxes(truth[0].xyxy, np.array([0.9, 0.8]), np.array([0, 1]))]
    result = coco_map(truth, perfect, CLASSES)
    assert result["map50"] == pytest.approx(1.0) and result["map50_95"] == pytest.approx(1.0)
    assert result["per_class"]["debris"] == {"map50": None, "map50_95": None}


def test_iou_matrix_literal() -> None:
    iou = iou_matrix(np.array([[0, 0, 10, 10]], float), np.array([[5, 0, 15, 10], [20, 20, 30, 30]], float))
    np.testing.assert_allclose(iou, [[50 / 150, 0.0]])


def test_f1_threshold_and_count_errors() -> None:
    truth = [Boxes.truth(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0, 0]))]
    preds = [Boxes(np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], float), np.array([0.9, 0.7, 0.3]), np.array([0, 0, 0]))]
    best = best_f1_threshold(truth, preds, 3)
    assert best == {"threshold": 0.7, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    counts = count_errors(truth, preds, CLASSES, threshold=0.2)
    assert counts["total_mae"] == 1.0
    assert counts["per_class"]["cell"] == {"mae": 1.0, "mean_relative_error": 0.5}  # type: ignore[index]
    assert counts["per_class"]["debris"]["mean_relative_error"] is None  # type: ignore[index]
