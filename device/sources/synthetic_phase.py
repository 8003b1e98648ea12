"""Phase contrast (`synthetic://?mode=phase`): live unstained cells in a culture dish.

Phase contrast turns thickness into brightness and adds its signature artefact, a bright halo
around every object. Spread (adherent) cells are elongated, dark and textured with a darker
nucleus; rounded (dividing or detaching) cells are small, bright and ringed by a strong halo.
The label is the cell body, not its halo, as a person would draw it.
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

CLASSES = ("cell", "rounded_cell")
_PLACEMENT_TRIES = 20


class PhaseConfig(ModalityConfig):
    cells: float = Field(24.0, ge=0, le=500, description="Cells per 640x480 field at scale 1")
    rounded_share: float = Field(0.25, ge=0, le=1, description="Share of rounded cells")
    touching: float = Field(0.2, ge=0, le=0.6, description="Largest share of a cell's box another may cover")


def _blob(rng: np.random.Generator, dim: int, length: float, width: float, wobble: float) -> np.ndarray:
    """An irregular elongated outline (a spread cell), anti-aliased, as a [0, 1] mask."""
    n = 14
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    radii = 1.0 + wobble * rng.uniform(-1, 1, n)
    pts = np.stack([np.cos(angles) * length / 2 * radii, np.sin(angles) * width / 2 * radii], axis=1)
    rot = rng.uniform(0, np.pi)
    pts = pts @ np.array([[np.cos(rot), np.sin(rot)], [-np.sin(rot), np.cos(rot)]]) + dim / 2
    mask = np.zeros((dim, dim), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 1.0)


def _halo(body: np.ndarray, width: float) -> np.ndarray:
    """Bright rim just outside the body: the phase halo."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * int(width) + 1, 2 * int(width) + 1))
    grown = cv2.dilate(body, kernel)
    return cv2.GaussianBlur(np.clip(grown - body, 0, 1), (0, 0), max(1.0, width / 2))


def spread_cell(rng: np.random.Generator, scale: float) -> tuple[np.ndarray, np.ndarray]:
    length = rng.uniform(45, 110) * scale
    width = length * rng.uniform(0.25, 0.6)
    dim = int(length + 24 * scale + 8)
    body = _blob(rng, dim, length, width, 0.18)
    nucleus = _blob(rng, dim, width * 0.7, width * 0.5, 0.08)
    texture = 0.7 + 0.6 * smooth_field(rng, dim, dim, cells=6)
    sprite = -rng.uniform(22, 40) * body * texture - rng.uniform(10, 20) * nucleus * body + rng.uniform(35, 55) * _halo(body, 4 * scale)
    return sprite, body


def rounded_cell(rng: np.random.Generator, scale: float) -> tuple[np.ndarray, np.ndarray]:
    diameter = rng.uniform(22, 40) * scale
    dim = int(diameter + 24 * scale + 8)
    body = _blob(rng, dim, diameter, diameter * rng.uniform(0.85, 1.0), 0.04)
    rim = np.clip(body - cv2.erode(body, np.ones((3, 3), np.uint8)), 0, 1)
    sprite = rng.uniform(30, 50) * body - 35.0 * rim + rng.uniform(55, 75) * _halo(body, 6 * scale)
    return sprite, body


class PhaseContrast(ModalityScope):
    classes = CLASSES
    config_type = PhaseConfig

    def draw_scene(self, rng: np.random.Generator) -> Scene:
        cfg = self.config
        assert isinstance(cfg, PhaseConfig)
        count = int(rng.poisson(cfg.cells * cfg.width * cfg.height / (640 * 480) / cfg.scale**2))
        canvas = Canvas(cfg.height, cfg.width, 1)
        placed = np.empty((count, 4))
        n_placed = 0
        for _ in range(count):
            class_id = int(rng.uniform() < cfg.rounded_share)
            sprite, body = (rounded_cell if class_id else spread_cell)(rng, cfg.scale)
            extent, dim = mask_extent(body), sprite.shape[0]
            for _ in range(_PLACEMENT_TRIES):
                x0 = int(rng.uniform(-dim / 3, cfg.width + dim / 3) - dim / 2)
                y0 = int(rng.uniform(-dim / 3, cfg.height + dim / 3) - dim / 2)
                box = np.array([x0 + extent[0], y0 + extent[1], x0 + extent[2], y0 + extent[3]], np.float64)
                if not overlaps_too_much(box, placed[:n_placed], cfg.touching):
                    placed[n_placed] = box
                    n_placed += 1
                    canvas.paste(sprite, (x0, y0), class_id, extent)
                    break
        light = 125.0 * (0.88 + 0.12 * smooth_field(rng, cfg.height, cfg.width, cells=2))
        background = (light + 3.0 * (smooth_field(rng, cfg.height, cfg.width, cells=24) - 0.5))[:, :, None]
        image = background + cv2.GaussianBlur(canvas.layer[:, :, 0], (0, 0), 0.7)[:, :, None]
        boxes, class_ids = canvas.labels()
        return Scene(np.repeat(image, 3, axis=2).astype(np.float32), np.repeat(background, 3, axis=2).astype(np.float32), boxes, class_ids)
