"""`resize: tile`: one scale for every frame, padded or cut into overlapping tiles, merged again.

Why: a model trained on frames from several microscopes knows its objects at one size. Every
frame is resized by the card's `scale` (aspect kept); a frame that then fits the network input is
padded (bottom and right, with its median colour, as the trainer's crops are), a larger one runs
as overlapping input-sized tiles. A detection belongs to the tile whose core (the tile minus half
the overlap to each neighbour) holds its centre; a cross-tile NMS at the seams removes the rare
duplicate whose centres land either side. A frame that would need more than `max_tiles` tiles is
shrunk until it fits: the frame-rate budget wins over detail, and the detector says so.

The trainer evaluates with its own copy of this rule (trainer/tiling.py; it never imports
`device`); tests/trainer/test_tiling.py checks both cut and merge alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from device.detections import Detections
from device.inference.preprocess import resize_to
from device.models.bundle import InputSpec

_MIN_SCALE_FACTOR = 0.05
_SHRINK_STEP = 0.9


@dataclass(frozen=True)
class TilePolicy:
    scale: float
    input_hw: tuple[int, int]
    overlap: int
    max_tiles: int

    @classmethod
    def of(cls, spec: InputSpec) -> TilePolicy | None:
        """The card's tiling rule, or None for `stretch`/`letterbox` cards (older bundles)."""
        if spec.resize != "tile" or spec.scale is None:
            return None
        return cls(spec.scale, (spec.height, spec.width), spec.tile_overlap, spec.max_tiles)


@dataclass(frozen=True)
class TileLayout:
    """How one frame was cut: the scale used, tile origins (y, x) and the seams between cores."""

    scale: float
    frame_hw: tuple[int, int]
    origins: list[tuple[int, int]]
    seams_y: list[float]
    seams_x: list[float]


def calibrated_scale(scale: float, frame_um: float | None, trained_um: float | None) -> float:
    """The card's scale for a frame of `frame_um` µm per pixel when the model was trained at
    `trained_um`: objects then reach the network at the size it learnt (trainer and device alike)."""
    if not trained_um or not frame_um or frame_um <= 0:
        return scale
    return float(min(16.0, max(0.01, scale * frame_um / trained_um)))


def scaled_hw(frame_hw: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, int(round(frame_hw[0] * scale))), max(1, int(round(frame_hw[1] * scale)))


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Window starts covering [0, length): evenly spread, neighbours overlapping by >= `overlap`."""
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / max(1, tile - overlap))
    return [int(round(i * (length - tile) / (n - 1))) for i in range(n)]


def _count(frame_hw: tuple[int, int], scale: float, policy: TilePolicy) -> int:
    h, w = scaled_hw(frame_hw, scale)
    return len(tile_starts(h, policy.input_hw[0], policy.overlap)) * len(tile_starts(w, policy.input_hw[1], policy.overlap))


def plan_frame(frame_hw: tuple[int, int], policy: TilePolicy) -> TileLayout:
    """Tiles for a frame of this size (the same for every frame of a stream: cache it)."""
    scale = policy.scale
    while _count(frame_hw, scale, policy) > policy.max_tiles and scale > policy.scale * _MIN_SCALE_FACTOR:
        scale *= _SHRINK_STEP
    h, w = scaled_hw(frame_hw, scale)
    ys = tile_starts(h, policy.input_hw[0], policy.overlap)
    xs = tile_starts(w, policy.input_hw[1], policy.overlap)
    return TileLayout(scale, frame_hw, [(y, x) for y in ys for x in xs], _seams(ys, policy.input_hw[0]), _seams(xs, policy.input_hw[1]))


def _seams(starts: list[int], tile: int) -> list[float]:
    return [(a + b + tile) / 2.0 for a, b in zip(starts, starts[1:], strict=False)]


def _median_colour(image: np.ndarray) -> list[int]:
    h, w = image.shape[:2]
    step = max(1, int(math.sqrt(h * w / 4096)))
    return [int(v) for v in np.median(image[::step, ::step].reshape(-1, image.shape[2]), axis=0)]


def cut_tiles(image: np.ndarray, layout: TileLayout, policy: TilePolicy) -> list[np.ndarray]:
    """8-bit frame [H, W, C] -> input-sized tiles, in `layout.origins` order."""
    h, w = scaled_hw(image.shape[:2], layout.scale)
    resized = image if (h, w) == image.shape[:2] else resize_to(image, (w, h))
    th, tw = policy.input_hw
    if h < th or w < tw:
        resized = cv2.copyMakeBorder(resized, 0, max(0, th - h), 0, max(0, tw - w), cv2.BORDER_CONSTANT,
                                     value=_median_colour(image))
    return [resized[y : y + th, x : x + tw] for y, x in layout.origins]


def _near(values: np.ndarray, seams: list[float], margin: float) -> np.ndarray:
    if not seams:
        return np.zeros(len(values), bool)
    return np.asarray((np.abs(values[:, None] - np.asarray(seams)[None, :]) <= margin).any(axis=1), bool)


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    lt, rb = np.maximum(box[:2], others[:, :2]), np.minimum(box[2:], others[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = (box[2] - box[0]) * (box[3] - box[1]) + (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return np.asarray(inter / np.maximum(area - inter, 1e-9))


def cross_tile_nms(det: Detections, tiles: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS where a box only suppresses a same-class box from ANOTHER tile (touching
    objects within one tile were already separated by the model); kept indices, ascending."""
    order = np.argsort(-det.scores, kind="stable")
    alive = np.ones(len(order), bool)
    keep: list[int] = []
    for pos, idx in enumerate(order):
        if not alive[pos]:
            continue
        keep.append(int(idx))
        rest = order[pos + 1 :]
        clash = (det.class_ids[rest] == det.class_ids[idx]) & (tiles[rest] != tiles[idx]) & alive[pos + 1 :]
        if clash.any():
            alive[pos + 1 :][np.flatnonzero(clash)[_iou(det.xyxy[idx], det.xyxy[rest[clash]]) > iou]] = False
    return np.asarray(sorted(keep), np.int64)


def merge_tiles(parts: list[Detections], layout: TileLayout, policy: TilePolicy, iou: float = 0.5) -> Detections:
    """Per-tile Detections (network pixels) -> the frame's Detections (frame pixels)."""
    shifted = [np.asarray(d.xyxy, np.float64) + np.array([x, y, x, y], np.float64) for d, (y, x) in zip(parts, layout.origins, strict=True)]
    xyxy = np.concatenate(shifted) if shifted else np.zeros((0, 4))
    scores = np.concatenate([d.scores for d in parts]) if parts else np.zeros(0, np.float32)
    classes = np.concatenate([d.class_ids for d in parts]) if parts else np.zeros(0, np.int32)
    tile = np.concatenate([np.full(len(d), t) for t, d in enumerate(parts)]) if parts else np.zeros(0, int)
    if len(layout.origins) > 1 and len(xyxy):
        cx, cy = (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2
        owner = (np.searchsorted(layout.seams_y, cy, side="right") * (len(layout.seams_x) + 1)
                 + np.searchsorted(layout.seams_x, cx, side="right"))
        own = owner == tile
        xyxy, scores, classes, tile, cx, cy = xyxy[own], scores[own], classes[own], tile[own], cx[own], cy[own]
        seam = _near(cx, layout.seams_x, policy.overlap / 2) | _near(cy, layout.seams_y, policy.overlap / 2)
        if seam.any():
            picked = np.flatnonzero(seam)[cross_tile_nms(Detections(xyxy[seam], scores[seam], classes[seam]), tile[seam], iou)]
            keep = np.sort(np.concatenate([np.flatnonzero(~seam), picked]))
            xyxy, scores, classes = xyxy[keep], scores[keep], classes[keep]
    h, w = layout.frame_hw
    order = np.argsort(-scores, kind="stable")
    return Detections(xyxy[order] / layout.scale, scores[order], classes[order]).clipped(w, h)
