"""A stained blood smear (`synthetic://?mode=blood`): what a haematology lab counts.

Drawn as light absorbed by stain (Beer-Lambert: transmitted = lamp * exp(-absorbance)), so
overlapping cells darken where they overlap, as on a slide. Red cells are dense, touching pink
discs with a pale centre (central pallor), often cut by the frame edge; white cells are large,
with a pale lilac cytoplasm and a dark purple nucleus of one to five lobes; platelets are small
purple granular clumps. Sizes are those of a 640x480 capture at 100x (red cells 80-130 px).
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import Field

from device.sources.synthetic_base import (
    Canvas,
    ModalityConfig,
    ModalityScope,
    Scene,
    mask_extent,
    overlaps_too_much,
    smooth_field,
)

CLASSES = ("red_cell", "white_cell", "platelet")
_LAMP = np.array([238.0, 228.0, 226.0], np.float32)
# Absorbance per unit stain, R, G, B: eosin-stained haemoglobin is pink-red, the nuclear stain violet.
_RED_CELL = np.array([0.12, 0.78, 0.55], np.float32)
_CYTOPLASM = np.array([0.10, 0.20, 0.05], np.float32)
_NUCLEUS = np.array([0.95, 1.35, 0.45], np.float32)
_PLATELET = np.array([0.55, 0.95, 0.30], np.float32)
_PLACEMENT_TRIES = 30


class BloodConfig(ModalityConfig):
    red_cells: float = Field(16.0, ge=0, le=200, description="Red cells per 640x480 field at scale 1")
    white_cells: float = Field(1.0, ge=0, le=20, description="Mean white cells per 640x480 field")
    platelets: float = Field(1.5, ge=0, le=50, description="Mean platelets per 640x480 field")
    touching: float = Field(0.22, ge=0, le=0.6, description="Largest share of a cell's box another may cover")


def _ellipse(dim: int, centre: tuple[float, float], axes: tuple[float, float], angle: float) -> np.ndarray:
    mask = np.zeros((dim, dim), np.uint8)
    cv2.ellipse(mask, (centre, (2 * axes[0], 2 * axes[1]), angle), 255, -1, cv2.LINE_AA)
    return mask.astype(np.float32) / 255.0


def red_cell(rng: np.random.Generator, diameter: float) -> tuple[np.ndarray, np.ndarray]:
    """Absorbance sprite [d, d, 3] and body mask of a biconcave disc: thick rim, pale centre."""
    a = diameter / 2
    b = a * rng.uniform(0.85, 1.0)
    dim = int(diameter + 6)
    angle = rng.uniform(0, 180)
    mask = _ellipse(dim, (dim / 2, dim / 2), (a, b), angle)
    yy, xx = np.mgrid[0:dim, 0:dim].astype(np.float32) - dim / 2
    t = np.deg2rad(angle)
    u, v = xx * np.cos(t) + yy * np.sin(t), -xx * np.sin(t) + yy * np.cos(t)
    r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    thickness = 0.75 + 0.35 * np.clip(r, 0, 1) ** 2 - rng.uniform(0.3, 0.55) * np.exp(-((r / 0.42) ** 2))
    stain = thickness * mask * rng.uniform(0.85, 1.15)
    return stain[:, :, None] * _RED_CELL, mask


def white_cell(rng: np.random.Generator, diameter: float) -> tuple[np.ndarray, np.ndarray]:
    """A leukocyte: pale cytoplasm and a textured violet nucleus of 1 (lymphocyte) to 5 lobes."""
    dim = int(diameter + 6)
    c = dim / 2
    cell = _ellipse(dim, (c, c), (diameter / 2, diameter / 2 * rng.uniform(0.88, 1.0)), rng.uniform(0, 180))
    lobes = int(rng.choice([1, 2, 3, 3, 4, 5]))
    nucleus = np.zeros_like(cell)
    if lobes == 1:
        nucleus = _ellipse(dim, (c + rng.uniform(-0.08, 0.08) * diameter, c), (diameter * 0.36, diameter * 0.32), rng.uniform(0, 180))
    else:
        start, sweep = rng.uniform(0, 2 * np.pi), rng.uniform(2.0, 4.0)
        for angle in start + np.linspace(0, sweep, lobes):
            centre = (c + np.cos(angle) * diameter * 0.2, c + np.sin(angle) * diameter * 0.2)
            size = diameter * rng.uniform(0.13, 0.19)
            nucleus = np.maximum(nucleus, _ellipse(dim, centre, (size, size * rng.uniform(0.7, 1.0)), rng.uniform(0, 180)))
    texture = 0.8 + 0.4 * smooth_field(rng, dim, dim, cells=8)
    sprite = cell[:, :, None] * _CYTOPLASM + (nucleus * texture * rng.uniform(0.9, 1.2))[:, :, None] * _NUCLEUS
    return sprite, cell


def platelet(rng: np.random.Generator, size: float) -> tuple[np.ndarray, np.ndarray]:
    """A small granular clump of a few overlapping purple blobs."""
    dim = int(size + 6)
    mask = np.zeros((dim, dim), np.float32)
    for _ in range(int(rng.integers(3, 7))):
        centre = tuple(dim / 2 + rng.uniform(-0.22, 0.22, 2) * size)
        radius = size * rng.uniform(0.14, 0.26)
        mask = np.maximum(mask, _ellipse(dim, (float(centre[0]), float(centre[1])), (radius, radius * rng.uniform(0.6, 1.0)), rng.uniform(0, 180)))
    grains = 0.7 + 0.6 * rng.uniform(0, 1, mask.shape).astype(np.float32)
    return (mask * cv2.GaussianBlur(grains, (0, 0), 1.0))[:, :, None] * _PLATELET, mask


class BloodSmear(ModalityScope):
    classes = CLASSES
    config_type = BloodConfig

    def draw_scene(self, rng: np.random.Generator) -> Scene:
        cfg = self.config
        assert isinstance(cfg, BloodConfig)
        area = cfg.width * cfg.height / (640 * 480) / cfg.scale**2
        canvas = Canvas(cfg.height, cfg.width, 3)
        placed: list[np.ndarray] = []
        plan = [(1, n) for n in range(int(rng.poisson(cfg.white_cells * area)))]
        plan += [(0, n) for n in range(int(rng.poisson(cfg.red_cells * area)))]
        plan += [(2, n) for n in range(int(rng.poisson(cfg.platelets * area)))]
        for class_id, _ in plan:
            self._place(rng, canvas, placed, class_id)
        stain = rng.uniform(0.9, 1.1, 3).astype(np.float32)
        lamp = _LAMP * (0.93 + 0.07 * smooth_field(rng, cfg.height, cfg.width))[:, :, None]
        absorbance = cv2.GaussianBlur(canvas.layer * stain, (0, 0), 0.8)
        boxes, class_ids = canvas.labels()
        return Scene(lamp * np.exp(-absorbance), lamp, boxes, class_ids)

    def _place(self, rng: np.random.Generator, canvas: Canvas, placed: list[np.ndarray], class_id: int) -> None:
        cfg = self.config
        assert isinstance(cfg, BloodConfig)
        if class_id == 0:
            sprite, mask = red_cell(rng, rng.uniform(80, 130) * cfg.scale)
        elif class_id == 1:
            sprite, mask = white_cell(rng, rng.uniform(120, 210) * cfg.scale)
        else:
            sprite, mask = platelet(rng, rng.uniform(30, 55) * cfg.scale)
        extent = mask_extent(mask)
        dim = sprite.shape[0]
        boxes = np.array(placed).reshape(-1, 4)
        for _ in range(_PLACEMENT_TRIES):
            # Centres range past the frame by a third of a cell: many cells are cut by the edge.
            x = int(rng.uniform(-dim / 3, cfg.width + dim / 3) - dim / 2)
            y = int(rng.uniform(-dim / 3, cfg.height + dim / 3) - dim / 2)
            box = np.array([x + extent[0], y + extent[1], x + extent[2], y + extent[3]], np.float64)
            if not overlaps_too_much(box, boxes, cfg.touching):
                placed.append(box)
                canvas.paste(sprite, (x, y), class_id, extent)
                return
