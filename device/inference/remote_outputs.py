"""Outputs that come from outside the device (a hive server), held to what the bundle's own graph
could answer: the same names and shapes, finite numbers, classes the bundle has, boxes within the
frame, at most `max_detections` rows where the graph leaves the count open.

A local model is trusted because it is the bundle's graph; a server is only a claim to run it. A
reply that fails any check is malformed: the frame falls back to the local backend, and nothing it
says (not even "no objects") reaches the metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from device.inference.onnx_graph import TensorInfo
from device.models.bundle import ModelCard

HEADER_ROOM_BYTES = 64 * 1024  # KServe v2 JSON header (names, shapes, parameters) of a reply
MAX_ITEMSIZE = 8  # a server may answer in any numeric type: count the widest
UNKNOWN_SHAPE_ELEMENTS = 1 << 20  # an output the graph gives no shape for


@dataclass(frozen=True)
class OutputContract:
    """What a reply for one bundle may contain, and how many bytes it may take."""

    outputs: tuple[TensorInfo, ...]
    card: ModelCard

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.outputs]

    @property
    def open_limit(self) -> int:
        """The most an open (dynamic) dimension may hold, other than the batch of one: detections
        for scopehive-v1 (rows are detections), anchors for a YOLO head (a stride-4 grid)."""
        spec = self.card.input
        if self.card.output.format == "scopehive-v1":
            return self.card.output.max_detections
        return max(self.card.output.max_detections, spec.width * spec.height // 16)

    def _elements(self, info: TensorInfo) -> int:
        if info.shape is None:
            return UNKNOWN_SHAPE_ELEMENTS
        dims = [d if d is not None else (1 if axis == 0 else self.open_limit) for axis, d in enumerate(info.shape)]
        return math.prod(dims)

    @property
    def max_reply_bytes(self) -> int:
        """The cap on a reply, known before it is read."""
        return HEADER_ROOM_BYTES + MAX_ITEMSIZE * sum(self._elements(o) for o in self.outputs)

    def problem(self, outputs: dict[str, np.ndarray]) -> str:
        """Why these outputs cannot be believed ('' when they can)."""
        if sorted(outputs) != sorted(self.names):
            return f"outputs {sorted(outputs)}, the bundle's graph has {sorted(self.names)}"
        for info in self.outputs:
            why = _shape_problem(info, outputs[info.name], self.open_limit) or _value_problem(info.name, outputs[info.name])
            if why:
                return why
        ordered = [outputs[name] for name in self.names]  # the graph's order, as the decoder reads them
        if self.card.output.format == "scopehive-v1":
            return _scopehive_problem(outputs, ordered, self.card)
        return _yolo_problem(ordered[0], self.card)


def _shape_problem(info: TensorInfo, array: np.ndarray, open_limit: int) -> str:
    if info.shape is None:
        return "" if array.size <= UNKNOWN_SHAPE_ELEMENTS else f"{info.name} has {array.size} values"
    if array.ndim != len(info.shape):
        return f"{info.name} has shape {list(array.shape)}, the graph gives {_shape_text(info)}"
    for axis, (have, want) in enumerate(zip(array.shape, info.shape, strict=True)):
        limit = want if want is not None else (1 if axis == 0 else open_limit)
        if have != want and (want is not None or have > limit):
            return f"{info.name} has shape {list(array.shape)}, the graph gives {_shape_text(info)} (open dimensions at most {open_limit})"
    return ""


def _shape_text(info: TensorInfo) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in (info.shape or ())) + "]"


def _value_problem(name: str, array: np.ndarray) -> str:
    if array.dtype.kind not in "biuf":
        return f"{name} is of type {array.dtype}, not a number"
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        return f"{name} holds NaN or infinite values"
    return ""


def _box_problem(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, card: ModelCard) -> str:
    """A model's box may reach past the edge of its input (it is clipped, as locally), but one
    further away than a whole input size is no box of this model."""
    w, h = card.input.width, card.input.height
    inside = (x1 >= -w) & (x2 <= 2 * w) & (y1 >= -h) & (y2 <= 2 * h)
    if not inside.all():
        bad = int(np.argmin(inside))
        return (f"box {bad} ({float(x1[bad]):.4g}, {float(y1[bad]):.4g}, {float(x2[bad]):.4g}, {float(y2[bad]):.4g}) "
                f"lies outside the {w}x{h} frame")
    return ""


def _scopehive_problem(outputs: dict[str, np.ndarray], ordered: list[np.ndarray], card: ModelCard) -> str:
    names = ("boxes", "scores", "classes")
    if not all(n in outputs for n in names) and len(ordered) != 3:
        return f"scopehive-v1 needs 3 outputs (boxes, scores, classes), the graph has {len(ordered)}"
    boxes, scores, classes = [outputs[n] for n in names] if all(n in outputs for n in names) else ordered
    scores = np.asarray(scores, np.float64).reshape(-1)
    if boxes.size != 4 * scores.size or classes.size != scores.size:
        return f"{boxes.size / 4:g} boxes, {scores.size} scores, {classes.size} classes disagree"
    rows = scores >= 0  # every row some threshold could keep
    xyxy = np.asarray(boxes, np.float64).reshape(-1, 4)[rows]
    ids = np.rint(np.asarray(classes, np.float64).reshape(-1)[rows])
    if ids.size and (ids.min() < 0 or ids.max() >= len(card.classes)):
        bad = ids[(ids < 0) | (ids >= len(card.classes))][0]
        return f"class id {bad:.0f}, the bundle has {len(card.classes)} classes"
    lo, hi = np.minimum(xyxy[:, :2], xyxy[:, 2:]), np.maximum(xyxy[:, :2], xyxy[:, 2:])
    return _box_problem(lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1], card)


def _yolo_problem(head: np.ndarray, card: ModelCard) -> str:
    """Raw YOLO rows (cx, cy, w, h, ...): centres within the frame's reach, sizes >= 0."""
    rows = head[0].T if card.output.format == "yolov8" else head[0]
    rows = np.asarray(rows, np.float64)
    if rows.ndim != 2 or rows.shape[1] < 5:
        return f"a {card.output.format} head of shape {list(head.shape)}"
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    if (w < 0).any() or (h < 0).any():
        return "a box of negative width or height"
    return _box_problem(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, card)
