"""What every synthetic mode is built from: the shared options, a noise-free scene, the sprite
canvas that labels what it pastes, and the scope that adds camera noise to a static sample.

The modes (synthetic_blood, synthetic_fluorescence, synthetic_phase) import this module, and the
registry (synthetic_modes) imports them: the imports point one way.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from device.detections import Detections
from device.sources.synthetic import SyntheticFrame

MIN_VISIBLE = 0.4  # share of an object's box inside the frame for it to be labelled


class ModalityConfig(BaseModel):
    """Options every mode shares; each mode adds its own."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(640, ge=64, le=8192, description="Frame width in pixels")
    height: int = Field(480, ge=64, le=8192, description="Frame height in pixels")
    seed: int = Field(0, description="Same seed, same frames")
    scale: float = Field(1.0, gt=0.1, le=10, description="Object size factor (1: sizes of a 640x480 capture)")
    shot_noise: float = Field(0.5, ge=0, le=5, description="Shot noise gain (x sqrt(signal))")
    read_noise: float = Field(2.0, ge=0, le=50, description="Read noise sigma in grey levels")
    um_per_pixel: float = Field(0.5, gt=0, le=100, description="Pixel size at zoom 1 (frames at zoom z: um_per_pixel / z)")
    zooms: str = Field("", pattern=r"^$|^[0-9.]+(,[0-9.]+)*$", description="Magnifications mixed in one package, e.g. "
                       "'1,3.7': each new scene draws objects at scale x one of them (pixels um_per_pixel / zoom); the "
                       "frames then carry their µm per pixel")
    bit_depth: int = Field(8, ge=8, le=16, description="8: uint8 frames; 10-16: uint16 counts of a camera of that depth")
    offset: float = Field(0.0, ge=0, le=60000, description="bit_depth > 8: the camera's dark level in counts")
    saturate_at: float = Field(230.0, gt=0, le=1000, description="bit_depth > 8: grey level (of the 8-bit rendering) "
                               "that reaches the camera's top count; brighter pixels saturate")

    def zoom_list(self) -> list[float]:
        return [float(z) for z in self.zooms.split(",") if float(z) > 0] if self.zooms else []


@dataclass(frozen=True)
class Scene:
    """A rendered sample without noise: float RGB in grey levels, and what a person would label."""

    image: np.ndarray  # [H, W, 3] float32 RGB
    background: np.ndarray  # [H, W, 3] float32 RGB: the same field without objects
    boxes: np.ndarray  # [N, 4] float32 xyxy
    class_ids: np.ndarray  # [N] int32


class Canvas:
    """Pastes object sprites (float [h, w] or [h, w, C]) into a layer and records their boxes."""

    def __init__(self, height: int, width: int, channels: int) -> None:
        self.layer = np.zeros((height, width, channels), np.float32)
        self.boxes: list[tuple[float, float, float, float]] = []
        self.class_ids: list[int] = []

    def paste(self, sprite: np.ndarray, top_left: tuple[int, int], class_id: int, extent: tuple[int, int, int, int]) -> None:
        """Add `sprite` at (x, y); label the object if enough of `extent` (x1, y1, x2, y2 inside the
        sprite: what is drawn, without halo or blur) lies in the frame."""
        h, w = sprite.shape[:2]
        x0, y0 = top_left
        height, width = self.layer.shape[:2]
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
        if cx1 <= cx0 or cy1 <= cy0:
            return
        part = sprite[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        self.layer[cy0:cy1, cx0:cx1] += part if part.ndim == 3 else part[:, :, None]
        bx1, by1, bx2, by2 = x0 + extent[0], y0 + extent[1], x0 + extent[2], y0 + extent[3]
        vx1, vy1, vx2, vy2 = max(bx1, 0), max(by1, 0), min(bx2, width), min(by2, height)
        full = (bx2 - bx1) * (by2 - by1)
        if vx2 > vx1 and vy2 > vy1 and (vx2 - vx1) * (vy2 - vy1) >= MIN_VISIBLE * full:
            self.boxes.append((float(vx1), float(vy1), float(vx2), float(vy2)))
            self.class_ids.append(class_id)

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.boxes, np.float32).reshape(-1, 4), np.asarray(self.class_ids, np.int32)


def mask_extent(mask: np.ndarray, level: float = 0.35) -> tuple[int, int, int, int]:
    """Tight (x1, y1, x2, y2) of where a [0, 1] mask is over `level` (half-drawn anti-aliased edge)."""
    ys, xs = np.nonzero(mask > level)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def overlaps_too_much(box: np.ndarray, placed: np.ndarray, limit: float) -> bool:
    """Whether more than `limit` of the smaller of `box` and any placed box is covered by the other."""
    if not len(placed):
        return False
    iw = np.minimum(box[2], placed[:, 2]) - np.maximum(box[0], placed[:, 0])
    ih = np.minimum(box[3], placed[:, 3]) - np.maximum(box[1], placed[:, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    areas = (placed[:, 2] - placed[:, 0]) * (placed[:, 3] - placed[:, 1])
    smaller = np.minimum((box[2] - box[0]) * (box[3] - box[1]), areas)
    return bool((inter > limit * smaller).any())


def smooth_field(rng: np.random.Generator, height: int, width: int, cells: int = 4) -> np.ndarray:
    """A smooth random field in [0, 1] (uneven illumination, stain or texture at low frequency)."""
    coarse = rng.uniform(0, 1, (cells + 1, cells + 1)).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / max(hi - lo, 1e-6)


class ModalityScope:
    """Base of the modes: a static sample rendered once, fresh camera noise on every frame."""

    classes: tuple[str, ...] = ()
    config_type: type[ModalityConfig] = ModalityConfig  # each mode names its own options

    def __init__(self, config: ModalityConfig | None = None, **options: object) -> None:
        config = config or self.config_type.model_validate(options)
        self.config = config
        self.base_config = config  # `config` is it at the current scene's zoom
        self.zoom = 1.0
        self._rng = np.random.default_rng(config.seed)
        self._index = 0
        self.scene = self.new_scene()

    @property
    def width(self) -> int:
        return self.config.width

    @property
    def height(self) -> int:
        return self.config.height

    def draw_scene(self, rng: np.random.Generator) -> Scene:
        raise NotImplementedError

    def new_scene(self) -> Scene:
        """Draw a new sample (what dataset generation wants between frames); with `zooms`, at one of
        them (objects `zoom` times larger, pixels `zoom` times finer)."""
        zooms = self.base_config.zoom_list()
        if zooms:
            self.zoom = float(zooms[int(self._rng.integers(len(zooms)))])
            self.config = self.base_config.model_copy(update={"scale": self.base_config.scale * self.zoom})
        self.scene = self.draw_scene(self._rng)
        return self.scene

    @property
    def um_per_pixel(self) -> float:
        return self.base_config.um_per_pixel / self.zoom

    def read(self) -> SyntheticFrame:
        cfg = self.config
        clean = self.scene.image
        sigma = np.sqrt(cfg.shot_noise**2 * np.clip(clean, 0, None) + cfg.read_noise**2)
        noisy = clean + sigma * self._rng.standard_normal(clean.shape, dtype=np.float32)
        truth = Detections(self.scene.boxes, np.ones(len(self.scene.boxes), np.float32), self.scene.class_ids)
        frame = SyntheticFrame(self._index, cv2.cvtColor(self._pixels(noisy), cv2.COLOR_RGB2BGR), truth, self.um_per_pixel)
        self._index += 1
        return frame

    def _pixels(self, grey_levels: np.ndarray) -> np.ndarray:
        """8-bit frames, or a camera's counts: dark offset + gain x signal, saturating at the top."""
        cfg = self.config
        if cfg.bit_depth == 8:
            return np.clip(grey_levels, 0, 255).round().astype(np.uint8)
        top = float(2**cfg.bit_depth - 1)
        gain = (top - cfg.offset) / cfg.saturate_at
        return np.clip(cfg.offset + gain * grey_levels, 0, top).round().astype(np.uint16)

    def __iter__(self) -> ModalityScope:
        return self

    def __next__(self) -> SyntheticFrame:
        return self.read()
