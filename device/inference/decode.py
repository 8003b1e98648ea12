"""Model outputs -> Detections in network pixels: scopehive-v1 (decoded in the graph) and raw
YOLOv8/YOLOv5 heads (decoded and NMS'd here, pure numpy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from device.detections import Detections
from device.models.bundle import OutputSpec

SCOPEHIVE_OUTPUTS = ("boxes", "scores", "classes")


class DecodeError(ValueError):
    """Outputs that do not have the shape the model card promises."""


def _by_name_or_order(outputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    if all(name in outputs for name in SCOPEHIVE_OUTPUTS):
        return [outputs[name] for name in SCOPEHIVE_OUTPUTS]
    if len(outputs) != 3:
        raise DecodeError(f"scopehive-v1 needs 3 outputs (boxes, scores, classes), the model has {len(outputs)}: {list(outputs)}")
    return list(outputs.values())


def decode_scopehive_v1(outputs: dict[str, np.ndarray], threshold: float, max_detections: int) -> Detections:
    boxes, scores, classes = _by_name_or_order(outputs)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4) if boxes.size else np.zeros((0, 4), np.float32)
    scores = np.asarray(scores, np.float32).reshape(-1)
    classes = np.asarray(classes).reshape(-1)
    if not (len(boxes) == len(scores) == len(classes)):
        raise DecodeError(f"scopehive-v1 outputs disagree: {len(boxes)} boxes, {len(scores)} scores, {len(classes)} classes")
    keep = scores >= threshold
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    order = np.argsort(-scores, kind="stable")[:max_detections]
    boxes = boxes[order]
    boxes = np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], axis=1)
    return Detections(boxes, scores[order], np.rint(classes[order]).astype(np.int32))


def nms(xyxy: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, best score first."""
    order = np.argsort(-scores, kind="stable")
    areas = np.maximum(xyxy[:, 2] - xyxy[:, 0], 0) * np.maximum(xyxy[:, 3] - xyxy[:, 1], 0)
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        lt = np.maximum(xyxy[best, :2], xyxy[rest, :2])
        rb = np.minimum(xyxy[best, 2:], xyxy[rest, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        overlap = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.asarray(keep, np.int64)


def _yolo_final(cxcywh: np.ndarray, scores: np.ndarray, classes: np.ndarray, spec: OutputSpec) -> Detections:
    xyxy = np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], axis=1)
    span = float(np.abs(xyxy).max()) + 1.0 if len(xyxy) else 1.0
    shifted = xyxy + (classes.astype(np.float32) * span)[:, None]  # class-aware NMS in one pass
    keep = nms(shifted, scores, spec.nms_iou)[: spec.max_detections]
    return Detections(xyxy[keep], scores[keep], classes[keep].astype(np.int32))


def decode_yolov8(output: np.ndarray, threshold: float, spec: OutputSpec) -> Detections:
    """[1, 4 + C, A] (cx, cy, w, h, class scores) -> boxes after class-aware NMS."""
    if output.ndim != 3 or output.shape[1] < 5:
        raise DecodeError(f"yolov8 output must be [1, 4 + classes, anchors], got {list(output.shape)}")
    rows = output[0].T.astype(np.float32)
    class_scores = rows[:, 4:]
    classes = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(rows)), classes]
    keep = scores >= threshold
    return _yolo_final(rows[keep, :4], scores[keep], classes[keep], spec)


def decode_yolov5(output: np.ndarray, threshold: float, spec: OutputSpec) -> Detections:
    """[1, A, 5 + C] (cx, cy, w, h, objectness, class scores) -> boxes after class-aware NMS."""
    if output.ndim != 3 or output.shape[2] < 6:
        raise DecodeError(f"yolov5 output must be [1, anchors, 5 + classes], got {list(output.shape)}")
    rows = output[0].astype(np.float32)
    class_scores = rows[:, 5:] * rows[:, 4:5]
    classes = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(rows)), classes]
    keep = scores >= threshold
    return _yolo_final(rows[keep, :4], scores[keep], classes[keep], spec)


def keep_class_thresholds(detections: Detections, thresholds: np.ndarray) -> Detections:
    """Each box kept only at or above its own class's threshold (the bundle's class_thresholds).

    Decoding runs at the lowest of them; class ids beyond the list keep the lowest too, so a
    mismatched model is reported by the warm-up check rather than silently emptied here.
    """
    if not len(detections):
        return detections
    ids = detections.class_ids
    per_box = np.where(ids < len(thresholds), thresholds[np.clip(ids, 0, len(thresholds) - 1)], thresholds.min())
    return detections[detections.scores >= per_box]


def decode(outputs: dict[str, np.ndarray], spec: OutputSpec, threshold: float) -> Detections:
    """Dispatch on the card's output format."""
    if spec.format == "scopehive-v1":
        return decode_scopehive_v1(outputs, threshold, spec.max_detections)
    first: Sequence[np.ndarray] = list(outputs.values())
    if spec.format == "yolov8":
        return decode_yolov8(first[0], threshold, spec)
    return decode_yolov5(first[0], threshold, spec)
