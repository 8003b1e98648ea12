"""One scale for every frame, padded or cut into overlapping tiles: the rule the device runs too.

Why: a dataset from several microscopes mixes frame sizes (256x256 next to 1388x1040). Stretching
each frame to one network input changes the objects' size from frame to frame by up to 4x, and a
model knows one size. So every frame is resized by the same factor (aspect kept); a frame that
then fits the network input is padded (bottom and right, with its median colour, as the training
crops are), a larger one is cut into overlapping input-sized tiles. Each detection belongs to the
tile whose core (the tile minus half the overlap to each neighbour) holds its centre, so an object
seen whole in two tiles is counted once; a cross-tile NMS at the seams catches the rare pair whose
centres land either side of a seam.

The device has its own copy of these few pure functions (device/inference/tiling.py: the trainer
never imports `device`); tests/trainer/test_tiling.py checks that both cut and merge alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from device.inference.preprocess import resize_to

_MIN_SCALE_FACTOR = 0.05
_SHRINK_STEP = 0.9  # frames needing more than max_tiles are shrunk in 10 % steps until they fit


@dataclass(frozen=True)
class TilePolicy:
    """What model.json `input` says for `resize: tile` (input pixels per frame pixel, tile, overlap)."""

    scale: float
    input_hw: tuple[int, int]
    overlap: int
    max_tiles: int


@dataclass(frozen=True)
class TileLayout:
    """How one frame was cut: the scale used, tile origins (y, x) and the seams between cores."""

    scale: float
    frame_hw: tuple[int, int]
    origins: list[tuple[int, int]]
    seams_y: list[float]
    seams_x: list[float]


def sample_scale(scale: float, sample_um: float | None, trained_um: float | None) -> float:
    """`scale` for a frame of `sample_um` µm per pixel in a model trained at `trained_um` (the
    device's rule, device/inference/tiling.py calibrated_scale)."""
    from device.inference.tiling import calibrated_scale

    return calibrated_scale(scale, sample_um, trained_um)


def scaled_hw(frame_hw: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, int(round(frame_hw[0] * scale))), max(1, int(round(frame_hw[1] * scale)))


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Window starts covering [0, length): evenly spread, neighbours overlapping by >= `overlap`."""
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / max(1, tile - overlap))
    return [int(round(i * (length - tile) / (n - 1))) for i in range(n)]


def tile_count(frame_hw: tuple[int, int], scale: float, policy: TilePolicy) -> int:
    h, w = scaled_hw(frame_hw, scale)
    return len(tile_starts(h, policy.input_hw[0], policy.overlap)) * len(tile_starts(w, policy.input_hw[1], policy.overlap))


def frame_scale(frame_hw: tuple[int, int], policy: TilePolicy) -> float:
    """The policy's scale, or less for a frame that would need more than `max_tiles` tiles."""
    scale = policy.scale
    while tile_count(frame_hw, scale, policy) > policy.max_tiles and scale > policy.scale * _MIN_SCALE_FACTOR:
        scale *= _SHRINK_STEP
    return scale


def _seams(starts: list[int], tile: int) -> list[float]:
    return [(a + b + tile) / 2.0 for a, b in zip(starts, starts[1:], strict=False)]


def plan_frame(frame_hw: tuple[int, int], policy: TilePolicy) -> TileLayout:
    scale = frame_scale(frame_hw, policy)
    h, w = scaled_hw(frame_hw, scale)
    ys = tile_starts(h, policy.input_hw[0], policy.overlap)
    xs = tile_starts(w, policy.input_hw[1], policy.overlap)
    origins = [(y, x) for y in ys for x in xs]
    return TileLayout(scale, frame_hw, origins, _seams(ys, policy.input_hw[0]), _seams(xs, policy.input_hw[1]))


def median_colour(image: np.ndarray) -> list[int]:
    """Per-channel median of a ~4096-pixel subsample: the padding colour of crops and tiles."""
    h, w = image.shape[:2]
    step = max(1, int(math.sqrt(h * w / 4096)))
    return [int(v) for v in np.median(image[::step, ::step].reshape(-1, image.shape[2]), axis=0)]


def cut_tiles(image: np.ndarray, policy: TilePolicy) -> tuple[np.ndarray, TileLayout]:
    """Frame [H, W, 3] uint8 -> tiles [n, h, w, 3] at the policy's scale, and how they were cut."""
    layout = plan_frame(image.shape[:2], policy)
    h, w = scaled_hw(image.shape[:2], layout.scale)
    resized = image if (h, w) == image.shape[:2] else resize_to(image, (w, h))
    th, tw = policy.input_hw
    if h < th or w < tw:
        resized = cv2.copyMakeBorder(resized, 0, max(0, th - h), 0, max(0, tw - w), cv2.BORDER_CONSTANT,
                                     value=median_colour(image))
    tiles = np.stack([resized[y : y + th, x : x + tw] for y, x in layout.origins])
    return tiles, layout


def _core_index(centres: np.ndarray, seams: list[float]) -> np.ndarray:
    return np.searchsorted(np.asarray(seams, np.float64), centres, side="right")


def _near_seam(centres: np.ndarray, seams: list[float], margin: float) -> np.ndarray:
    if not seams:
        return np.zeros(len(centres), bool)
    return np.asarray((np.abs(centres[:, None] - np.asarray(seams)[None, :]) <= margin).any(axis=1), bool)


def _area(xyxy: np.ndarray) -> np.ndarray:
    return np.asarray(np.clip(xyxy[..., 2] - xyxy[..., 0], 0, None) * np.clip(xyxy[..., 3] - xyxy[..., 1], 0, None))


def _iou_one(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    lt = np.maximum(box[:2], others[:, :2])
    rb = np.minimum(box[2:], others[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    return np.asarray(inter / np.maximum(_area(box) + _area(others) - inter, 1e-9))


def cross_tile_nms(xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray, tiles: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS that only lets a box suppress a same-class box from ANOTHER tile; kept indices.

    Boxes from one tile were already separated by the model's peak extraction: touching objects
    must not be merged here.
    """
    order = np.argsort(-scores, kind="stable")
    alive = np.ones(len(order), bool)
    keep: list[int] = []
    for pos, idx in enumerate(order):
        if not alive[pos]:
            continue
        keep.append(int(idx))
        rest = order[pos + 1 :]
        clash = (classes[rest] == classes[idx]) & (tiles[rest] != tiles[idx]) & alive[pos + 1 :]
        if clash.any():
            overlap = _iou_one(xyxy[idx], xyxy[rest[clash]])
            alive[pos + 1 :][np.flatnonzero(clash)[overlap > iou]] = False
    return np.asarray(sorted(keep), np.int64)


def merge_tiles(boxes: list[np.ndarray], scores: list[np.ndarray], classes: list[np.ndarray], layout: TileLayout,
                policy: TilePolicy, iou: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-tile detections (input pixels) -> one frame's detections (frame pixels)."""
    parts_xyxy, parts_tile = [], []
    for t, ((y0, x0), xyxy) in enumerate(zip(layout.origins, boxes, strict=True)):
        parts_xyxy.append(np.asarray(xyxy, np.float64).reshape(-1, 4) + np.array([x0, y0, x0, y0], np.float64))
        parts_tile.append(np.full(len(parts_xyxy[-1]), t))
    xyxy = np.concatenate(parts_xyxy)
    score = np.concatenate([np.asarray(s, np.float64).reshape(-1) for s in scores])
    cls = np.concatenate([np.asarray(c).reshape(-1) for c in classes]).astype(np.int64)
    tile = np.concatenate(parts_tile)
    if len(layout.origins) > 1:
        cx, cy = (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2
        n_x = len(layout.seams_x) + 1
        owner = _core_index(cy, layout.seams_y) * n_x + _core_index(cx, layout.seams_x)
        own = owner == tile
        xyxy, score, cls, tile, cx, cy = xyxy[own], score[own], cls[own], tile[own], cx[own], cy[own]
        margin = policy.overlap / 2.0
        seam = _near_seam(cx, layout.seams_x, margin) | _near_seam(cy, layout.seams_y, margin)
        if seam.any():
            picked = np.flatnonzero(seam)[cross_tile_nms(xyxy[seam], score[seam], cls[seam], tile[seam], iou)]
            keep = np.sort(np.concatenate([np.flatnonzero(~seam), picked]))
            xyxy, score, cls = xyxy[keep], score[keep], cls[keep]
    h, w = layout.frame_hw
    xyxy = np.clip(xyxy / layout.scale, 0, [w, h, w, h])
    order = np.argsort(-score, kind="stable")
    return xyxy[order], score[order], cls[order]
