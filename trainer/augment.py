"""Microscopy augmentation and CenterNet training targets, in numpy and OpenCV.

Why these transforms: a microscope sees the same objects at any orientation (flips, 90-degree
turns), under drifting illumination and focus (brightness, contrast, gamma, blur), with sensor
noise, and at slightly different magnifications (scale jitter). Training on random crops keeps
each step cheap on a CPU while the fully convolutional network still runs on whole frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from device.inference.preprocess import resize_to
from trainer.dataset import Sample
from trainer.grid import STRIDE
from trainer.tiling import median_colour

PIXEL_SCALE = 1.0 / 127.5  # MobileNetV2 expects x = pixel / 127.5 - 1
PIXEL_MEAN = 1.0
_MIN_VISIBLE = 0.4  # an object cut by the crop counts only if this share of its box remains
_IGNORE_PEAK = 0.9  # focal-loss weight (1 - 0.9)^4: a sliver's centre is neither object nor background


@dataclass(frozen=True)
class AugmentConfig:
    crop: int = 256
    scale_jitter: float = 0.2
    photometric: bool = True
    geometric: bool = True


@dataclass(frozen=True)
class Targets:
    heatmap: np.ndarray  # [h, w, C] gaussian peaks, exactly 1 at object centres
    log_size: np.ndarray  # [h, w, 2] log(box size / stride) at centres
    offset: np.ndarray  # [h, w, 2] sub-cell centre offset at centres
    mask: np.ndarray  # [h, w, 1] 1 at centres


def normalize(image: np.ndarray) -> np.ndarray:
    """RGB uint8 -> network input; the same formula is written into model.json `normalization`."""
    return image.astype(np.float32) * PIXEL_SCALE - PIXEL_MEAN


@dataclass(frozen=True)
class Crop:
    """One training crop: RGB uint8 pixels, the objects to learn, and slivers to leave alone.

    `ignore` are objects the crop cut to under 40 % of their annotated box: too little to learn
    as an object, too much to punish as background (a frame edge would have shown them whole or
    the annotator would have boxed the visible part; the crop edge is neither).
    """

    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    ignore: np.ndarray
    ignore_classes: np.ndarray


def _source_window(sample: Sample, scale: float, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random frame window that becomes about size x size at `scale`, resized; boxes to match.

    Cutting before resizing costs the same for a 256x256 frame and a 1388x1040 one.
    """
    h, w = sample.image.shape[:2]
    window = int(np.ceil(size / scale))
    x0 = int(rng.integers(0, max(0, w - window) + 1))
    y0 = int(rng.integers(0, max(0, h - window) + 1))
    cut = sample.image[y0 : y0 + window, x0 : x0 + window]
    out_w, out_h = max(1, int(round(cut.shape[1] * scale))), max(1, int(round(cut.shape[0] * scale)))
    resized = resize_to(cut, (out_w, out_h))
    sx, sy = out_w / cut.shape[1], out_h / cut.shape[0]
    boxes = (sample.boxes - np.array([x0, y0, x0, y0], np.float32)) * np.array([sx, sy, sx, sy], np.float32)
    return resized, boxes.reshape(-1, 4)


def _crop(image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, size: int, rng: np.random.Generator) -> Crop:
    """A random size x size window (padded with the median colour where the image is smaller)."""
    h, w = image.shape[:2]
    if h < size or w < size:
        fill = median_colour(image)
        image = cv2.copyMakeBorder(image, 0, max(0, size - h), 0, max(0, size - w), cv2.BORDER_CONSTANT, value=fill)
        h, w = image.shape[:2]
    x0 = int(rng.integers(0, w - size + 1))
    y0 = int(rng.integers(0, h - size + 1))
    window = image[y0 : y0 + size, x0 : x0 + size]
    shifted = boxes.reshape(-1, 4) - np.array([x0, y0, x0, y0], np.float32)
    clipped = shifted.clip(0, size)
    full = (shifted[:, 2] - shifted[:, 0]) * (shifted[:, 3] - shifted[:, 1])
    seen = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = seen >= _MIN_VISIBLE * np.maximum(full, 1e-6)
    sliver = ~keep & (seen > 0)
    return Crop(window, clipped[keep], classes[keep], clipped[sliver], classes[sliver])


def _flip_rotate(image: np.ndarray, groups: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
    size = image.shape[0]  # square crops: rotations keep the shape
    groups = [b.reshape(-1, 4) for b in groups]
    if rng.random() < 0.5:
        image = image[:, ::-1]
        groups = [np.stack([size - b[:, 2], b[:, 1], size - b[:, 0], b[:, 3]], axis=1) for b in groups]
    for _ in range(int(rng.integers(0, 4))):  # 90 degrees counter-clockwise: (x, y) -> (y, size - x)
        image = np.rot90(image)
        groups = [np.stack([b[:, 1], size - b[:, 2], b[:, 3], size - b[:, 0]], axis=1) for b in groups]
    return np.ascontiguousarray(image), [b.astype(np.float32).reshape(-1, 4) for b in groups]


def _photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = image.astype(np.float32) / 255.0
    x = (x - x.mean()) * rng.uniform(0.75, 1.3) + x.mean() + rng.uniform(-0.12, 0.12)
    x = np.clip(x, 0.0, 1.0) ** rng.uniform(0.75, 1.35)
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(0.4, 1.4)))
    if rng.random() < 0.5:
        x = x + rng.normal(0.0, rng.uniform(0.0, 0.03), x.shape).astype(np.float32)
    return np.clip(x * 255.0, 0, 255).astype(np.uint8)


def augment(sample: Sample, scale: float, config: AugmentConfig, rng: np.random.Generator) -> Crop:
    """One random training crop at the model's one scale (aspect kept), augmented."""
    jitter = float(np.exp(rng.uniform(-config.scale_jitter, config.scale_jitter)))
    image, boxes = _source_window(sample, scale * jitter, config.crop, rng)
    crop = _crop(image, boxes, sample.classes, config.crop, rng)
    image, boxes, ignore = crop.image, crop.boxes, crop.ignore
    if config.geometric:
        image, (boxes, ignore) = _flip_rotate(image, [boxes, ignore], rng)
    if config.photometric:
        image = _photometric(image, rng)
    return Crop(image, boxes, crop.classes, ignore, crop.ignore_classes)


def _splat(heat: np.ndarray, cx: int, cy: int, sigma: tuple[float, float], peak: float = 1.0) -> None:
    """Max a gaussian peak (`peak` at the centre cell, 1 for objects) into one class channel."""
    h, w = heat.shape
    rx, ry = max(1, int(3 * sigma[0])), max(1, int(3 * sigma[1]))
    x0, x1 = max(0, cx - rx), min(w, cx + rx + 1)
    y0, y1 = max(0, cy - ry), min(h, cy + ry + 1)
    xs = np.arange(x0, x1, dtype=np.float32) - cx
    ys = np.arange(y0, y1, dtype=np.float32) - cy
    blob = peak * np.exp(-(xs[None, :] ** 2) / (2 * sigma[0] ** 2) - (ys[:, None] ** 2) / (2 * sigma[1] ** 2))
    np.maximum(heat[y0:y1, x0:x1], blob, out=heat[y0:y1, x0:x1])


def _regress_around(targets: Targets, owner: np.ndarray, centre: tuple[float, float], log_wh: tuple[float, float]) -> None:
    """Size and offset targets at the centre cell and its 8 neighbours (weight 1 and 0.5).

    The decoder reads size and offset at whichever cell peaks; for small objects the peak often
    lands one cell off, and a box read from an untrained cell would be garbage. Where touching
    objects share a neighbour cell, the object whose centre is nearer owns it.
    """
    gh, gw = owner.shape
    cx, cy = centre
    ix, iy = min(int(cx), gw - 1), min(int(cy), gh - 1)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            x, y = ix + dx, iy + dy
            if not (0 <= x < gw and 0 <= y < gh):
                continue
            weight = 1.0 if dx == dy == 0 else 0.5
            closeness = weight - 0.01 * float(np.hypot(cx - x - 0.5, cy - y - 0.5))
            if closeness <= owner[y, x]:
                continue
            owner[y, x] = closeness
            targets.log_size[y, x] = log_wh
            targets.offset[y, x] = (cx - x, cy - y)
            targets.mask[y, x] = weight


def encode_targets(boxes: np.ndarray, classes: np.ndarray, image_hw: tuple[int, int], num_classes: int,
                   ignore: tuple[np.ndarray, np.ndarray] | None = None) -> Targets:
    """Boxes in input pixels -> dense targets at stride 4 (elliptical gaussians sized by the box).

    Slivers in `ignore` (boxes, classes) get a blob just under a peak: the focal loss then neither rewards
    nor punishes a detection there.
    """
    gh, gw = image_hw[0] // STRIDE, image_hw[1] // STRIDE
    heat = np.zeros((num_classes, gh, gw), np.float32)
    targets = Targets(
        heat, np.zeros((gh, gw, 2), np.float32), np.zeros((gh, gw, 2), np.float32), np.zeros((gh, gw, 1), np.float32)
    )
    owner = np.zeros((gh, gw), np.float32)
    if ignore is not None:
        for (x1, y1, x2, y2), cls in zip(ignore[0].tolist(), ignore[1].tolist(), strict=True):
            bw, bh = (x2 - x1) / STRIDE, (y2 - y1) / STRIDE
            if bw > 0 and bh > 0:
                cx, cy = min(int((x1 + x2) / 2 / STRIDE), gw - 1), min(int((y1 + y2) / 2 / STRIDE), gh - 1)
                _splat(heat[cls], cx, cy, (max(0.54 * bw / 6, 0.35), max(0.54 * bh / 6, 0.35)), _IGNORE_PEAK)
    for (x1, y1, x2, y2), cls in zip(boxes.tolist(), classes.tolist(), strict=True):
        bw, bh = (x2 - x1) / STRIDE, (y2 - y1) / STRIDE
        if bw <= 0 or bh <= 0:
            continue
        cx, cy = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE
        ix, iy = min(int(cx), gw - 1), min(int(cy), gh - 1)
        _splat(heat[cls], ix, iy, (max(0.54 * bw / 6, 0.35), max(0.54 * bh / 6, 0.35)))
        _regress_around(targets, owner, (cx, cy), (float(np.log(bw)), float(np.log(bh))))
    return Targets(np.ascontiguousarray(heat.transpose(1, 2, 0)), targets.log_size, targets.offset, targets.mask)
