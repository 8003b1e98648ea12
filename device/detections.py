"""The one currency between stages after inference: a validated batch of boxes for one frame."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def _as_array(value: object, dtype: type, name: str, shape: tuple[int, ...]) -> np.ndarray:
    array: np.ndarray = np.asarray(value, dtype=dtype)
    if array.size == 0:
        return np.zeros(shape, dtype=dtype)
    if array.ndim != len(shape) or (len(shape) == 2 and array.shape[1] != shape[1]):
        raise ValueError(f"Detections.{name} must have shape {shape}, got {array.shape}")
    return array


@dataclass(frozen=True)
class Detections:
    """Boxes of one frame in pixels (x1, y1, x2, y2), with one score and one class id per box.

    Every stage after inference (statistics, rendering, pre-annotation, evaluation) speaks this
    type, so a backend only has to produce it once and nothing downstream guesses at layouts.
    """

    xyxy: np.ndarray
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))

    def __post_init__(self) -> None:
        xyxy = _as_array(self.xyxy, np.float32, "xyxy", (0, 4))
        n = len(xyxy)
        scores = _as_array(self.scores, np.float32, "scores", (0,))
        class_ids = _as_array(self.class_ids, np.int32, "class_ids", (0,))
        if len(scores) == 0 and n:
            scores = np.ones((n,), np.float32)
        if len(scores) != n or len(class_ids) != n:
            raise ValueError(
                f"Detections needs one score and one class id per box: "
                f"{n} boxes, {len(scores)} scores, {len(class_ids)} class ids"
            )
        if n and not np.all(np.isfinite(xyxy)):
            raise ValueError("Detections.xyxy contains NaN or infinite coordinates")
        if n and np.any(xyxy[:, 2:] < xyxy[:, :2]):
            raise ValueError("Detections.xyxy needs x2 >= x1 and y2 >= y1 for every box")
        if n and np.any(class_ids < 0):
            raise ValueError("Detections.class_ids must be >= 0")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "class_ids", class_ids)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32))

    @classmethod
    def from_lists(
        cls,
        boxes: Sequence[Sequence[float]],
        scores: Sequence[float] | None = None,
        class_ids: Sequence[int] | None = None,
    ) -> Detections:
        """Build from plain lists (tests, JSON); missing scores default to 1, classes to 0."""
        n = len(boxes)
        return cls(
            np.asarray(boxes, np.float32).reshape(n, 4),
            np.asarray(scores if scores is not None else [1.0] * n, np.float32),
            np.asarray(class_ids if class_ids is not None else [0] * n, np.int32),
        )

    @classmethod
    def from_xywh(
        cls, xywh: np.ndarray, scores: np.ndarray | None = None, class_ids: np.ndarray | None = None
    ) -> Detections:
        """From COCO-style (x, y, width, height) boxes."""
        xywh = np.asarray(xywh, np.float32).reshape(-1, 4)
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        n = len(xyxy)
        return cls(
            xyxy,
            scores if scores is not None else np.ones((n,), np.float32),
            class_ids if class_ids is not None else np.zeros((n,), np.int32),
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice | int) -> Detections:
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return Detections(self.xyxy[index], self.scores[index], self.class_ids[index])

    @property
    def width(self) -> np.ndarray:
        return self.xyxy[:, 2] - self.xyxy[:, 0]

    @property
    def height(self) -> np.ndarray:
        return self.xyxy[:, 3] - self.xyxy[:, 1]

    @property
    def area(self) -> np.ndarray:
        return self.width * self.height

    def to_xywh(self) -> np.ndarray:
        return np.concatenate([self.xyxy[:, :2], self.xyxy[:, 2:] - self.xyxy[:, :2]], axis=1)

    def scaled(self, sx: float, sy: float) -> Detections:
        """The same boxes in another pixel grid (e.g. model input -> frame)."""
        factor = np.asarray([sx, sy, sx, sy], np.float32)
        return Detections(self.xyxy * factor, self.scores, self.class_ids)

    def clipped(self, width: int, height: int) -> Detections:
        xyxy = self.xyxy.copy()
        xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, width)
        xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, height)
        return Detections(xyxy, self.scores, self.class_ids)

    def with_min_score(self, threshold: float) -> Detections:
        return self[self.scores >= threshold]

    def to_records(self, class_names: Sequence[str] | None = None) -> list[dict[str, object]]:
        """Plain JSON-friendly dicts (for the panel and the stats endpoint)."""
        records: list[dict[str, object]] = []
        for box, score, cid in zip(self.xyxy.tolist(), self.scores.tolist(), self.class_ids.tolist(), strict=True):
            record: dict[str, object] = {"box": [round(v, 2) for v in box], "score": round(score, 4), "class_id": cid}
            if class_names is not None and cid < len(class_names):
                record["class_name"] = class_names[cid]
            records.append(record)
        return records


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a [N, 4] with every box in b [M, 4] (xyxy); the one the device and the trainer use."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
