"""Running the inference model on whole frames the way the device does, and scoring the result.

Frames are stretched to the network input (the bundle says `resize: stretch`) and boxes are
scaled back to frame pixels, so validation numbers are what the device will actually see.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import cv2
import numpy as np

from trainer.augment import normalize
from trainer.dataset import Sample
from trainer.metrics import Boxes, best_f1_threshold, coco_map, count_errors


def prepare_input(image: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """RGB uint8 frame -> normalised network input [h, w, 3] (stretch resize)."""
    h, w = input_hw
    interp = cv2.INTER_AREA if image.shape[1] > w else cv2.INTER_LINEAR
    return normalize(cv2.resize(image, (w, h), interpolation=interp))


Runner = Callable[[np.ndarray], Mapping[str, object]]


def keras_runner(model: object) -> Runner:
    return lambda x: model(x, training=False)  # type: ignore[operator]


def predict(model: Runner, samples: list[Sample], input_hw: tuple[int, int], batch: int = 4) -> list[Boxes]:
    """Detector outputs (Keras or ONNX runner) for each sample, boxes in the sample's own pixels."""
    results: list[Boxes] = []
    for start in range(0, len(samples), batch):
        chunk = samples[start : start + batch]
        x = np.stack([prepare_input(s.image, input_hw) for s in chunk])
        out: Mapping[str, object] = model(x)
        for i, sample in enumerate(chunk):
            sy = sample.image.shape[0] / input_hw[0]
            sx = sample.image.shape[1] / input_hw[1]
            boxes = np.asarray(out["boxes"], np.float64)[i] * np.array([sx, sy, sx, sy])
            scores = np.asarray(out["scores"], np.float64)[i]
            results.append(Boxes(boxes, scores, np.asarray(out["classes"])[i].astype(int)))
    return results


def truth_of(samples: list[Sample]) -> list[Boxes]:
    return [Boxes.truth(s.boxes, s.classes) for s in samples]


def evaluate_predictions(samples: list[Sample], preds: list[Boxes], classes: list[str], max_dets: int = 100) -> dict[str, object]:
    """Everything the lab asks about: mAP, precision/recall at the F1-best threshold, count errors."""
    truth = truth_of(samples)
    maps = coco_map(truth, preds, classes, max_dets)
    operating = best_f1_threshold(truth, preds, len(classes), max_dets)
    counts = count_errors(truth, preds, classes, operating["threshold"])
    return {
        "map50": maps["map50"],
        "map50_95": maps["map50_95"],
        "per_class": maps["per_class"],
        "score_threshold": operating["threshold"],
        "precision": operating["precision"],
        "recall": operating["recall"],
        "f1": operating["f1"],
        "count_error": counts,
        "val_images": len(samples),
        "val_objects": int(sum(len(s.boxes) for s in samples)),
    }
