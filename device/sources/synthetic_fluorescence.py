"""Fluorescent nuclei (`synthetic://?mode=fluorescence`): a stained-DNA channel, counted by the hundred.

Dark background, hundreds of bright blobs of varied size and brightness with chromatin texture,
many in clusters where they touch, under uneven illumination (bright centre, dim corner), seen
through a slightly blurring objective. The difficulty real nuclei sets have: dense touching
objects, dim ones beside bright ones, and far more objects per image than a default top-100.
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

CLASSES = ("nucleus",)
_PLACEMENT_TRIES = 15


class FluorescenceConfig(ModalityConfig):
    density: float = Field(900.0, gt=0, le=5000, description="Nuclei per megapixel at scale 1")
    cluster_fraction: float = Field(0.6, ge=0, le=1, description="Share of nuclei placed in clusters")
    touching: float = Field(0.25, ge=0, le=0.6, description="Largest share of a nucleus' box another may cover")
    unevenness: float = Field(0.55, ge=0, lt=1, description="Illumination lost in the dimmest part of the field")


def nucleus(rng: np.random.Generator, diameter: float) -> tuple[np.ndarray, np.ndarray]:
    """Emission sprite and body mask: an ellipse with soft edge and blotchy chromatin."""
    a = diameter / 2
    dim = int(diameter + 8)
    mask = np.zeros((dim, dim), np.uint8)
    cv2.ellipse(mask, ((dim / 2, dim / 2), (2 * a, 2 * a * rng.uniform(0.6, 1.0)), rng.uniform(0, 180)), 255, -1, cv2.LINE_AA)
    body = mask.astype(np.float32) / 255.0
    chromatin = 0.7 + 0.6 * smooth_field(rng, dim, dim, cells=max(2, int(diameter / 6)))
    return body * chromatin * rng.uniform(45, 190), body


class FluorescentNuclei(ModalityScope):
    classes = CLASSES
    config_type = FluorescenceConfig

    def draw_scene(self, rng: np.random.Generator) -> Scene:
        cfg = self.config
        assert isinstance(cfg, FluorescenceConfig)
        count = int(rng.poisson(cfg.density * cfg.width * cfg.height / 1e6 / cfg.scale**2))
        centres = rng.uniform((0, 0), (cfg.width, cfg.height), (max(1, int(rng.poisson(6))), 2))
        canvas = Canvas(cfg.height, cfg.width, 1)
        placed = np.empty((count, 4))
        n_placed = 0
        for _ in range(count):
            sprite, body = nucleus(rng, float(np.exp(rng.uniform(np.log(9), np.log(26)))) * cfg.scale)
            extent, dim = mask_extent(body), sprite.shape[0]
            for _ in range(_PLACEMENT_TRIES):
                if rng.uniform() < cfg.cluster_fraction:
                    x, y = centres[int(rng.integers(len(centres)))] + rng.normal(0, 45 * cfg.scale, 2)
                else:
                    x, y = rng.uniform(0, cfg.width), rng.uniform(0, cfg.height)
                x0, y0 = int(x - dim / 2), int(y - dim / 2)
                box = np.array([x0 + extent[0], y0 + extent[1], x0 + extent[2], y0 + extent[3]], np.float64)
                if not overlaps_too_much(box, placed[:n_placed], cfg.touching):
                    placed[n_placed] = box
                    n_placed += 1
                    canvas.paste(sprite, (x0, y0), 0, extent)
                    break
        light = 1.0 - cfg.unevenness * smooth_field(rng, cfg.height, cfg.width, cells=2)
        background = np.full((cfg.height, cfg.width, 1), rng.uniform(6, 14), np.float32) * (0.7 + 0.3 * light[:, :, None])
        emission = cv2.GaussianBlur(canvas.layer[:, :, 0], (0, 0), 1.1)[:, :, None] * light[:, :, None]
        boxes, class_ids = canvas.labels()
        image = np.repeat(background + emission, 3, axis=2)
        return Scene(image, np.repeat(background, 3, axis=2), boxes, class_ids)
