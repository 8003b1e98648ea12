"""A seeded, deterministic microscope simulator that also knows the ground truth of every frame.

It is the demo's camera, the tests' data and the first dataset a new user trains on. Speed comes
from doing the expensive work once: every object is pre-rendered as a small sprite (shape, defocus),
noise comes from a pre-drawn bank read at random offsets, and illumination is a fixed field. A frame
is then a copy, a few dozen sprite additions and three whole-frame OpenCV passes.

The truth is what a careful person would label: objects may touch and overlap at their edges but
are never placed mostly on top of another (hidden, yet labelled), and an object blurred so far out
of focus that it is no longer distinguishable from the noise is drawn but not labelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from device.detections import Detections
from device.sources import motion as kinematics

CLASSES: tuple[str, ...] = ("cell", "crystal", "debris")
_BACKGROUND_LEVEL = 175.0
_NOISE_PAD = 64


class SyntheticConfig(BaseModel):
    """What the simulated sample and optics look like."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(1280, ge=64, le=8192, description="Frame width in pixels")
    height: int = Field(960, ge=64, le=8192, description="Frame height in pixels")
    seed: int = Field(0, description="Same seed, same frames")
    density: float = Field(30.0, gt=0, le=400, description="Objects per megapixel")
    class_mix: tuple[float, float, float] = Field(
        (0.5, 0.3, 0.2), description="Share of cells, crystals and debris"
    )
    cluster_fraction: float = Field(0.35, ge=0, le=1, description="Share of objects placed touching another")
    drift: float = Field(0.4, ge=0, le=20, description="Stage drift in pixels per frame")
    brownian: float = Field(0.6, ge=0, le=20, description="Brownian step of a 20 px object, pixels per frame")
    max_defocus: float = Field(2.5, ge=0, le=10, description="Largest defocus blur sigma in pixels")
    shot_noise: float = Field(0.35, ge=0, le=5, description="Shot noise gain (x sqrt(signal))")
    read_noise: float = Field(2.0, ge=0, le=50, description="Read noise sigma in grey levels")
    vignetting: float = Field(0.25, ge=0, le=0.9, description="Brightness lost at the corners")
    um_per_pixel: float = Field(0.65, gt=0, le=100, description="Pixel size in the sample plane (µm): the truth's sizes in µm")
    defocus: float = Field(0.0, ge=0, le=20, description="Whole-frame defocus blur sigma in pixels (the focus knob)")
    focus_drift: float = Field(0.0, ge=0, le=20, description="Extra defocus sigma the focus drifts to and back, once per focus_period")
    focus_period: int = Field(60, ge=2, le=100_000, description="Frames of one focus drift cycle (starts and ends sharp)")
    exposure: float = Field(1.0, gt=0, le=10, description="Exposure gain: 1 = normal; ~1.5 clips the background to white")
    motion: kinematics.Motion = Field("brownian", description="brownian (drift + jitter), swim (cells swim at swim_speed), "
                                  "flow (laminar flow along +x, walls at top and bottom)")
    swim_speed: float = Field(3.0, ge=0, le=50, description="Speed of swimming cells, pixels per frame (motion=swim)")
    swim_turn: float = Field(0.03, ge=0, le=1, description="Heading noise of swimmers, radians per frame (motion=swim)")
    flow_speed: float = Field(4.0, ge=0, le=100, description="Centreline flow speed, pixels per frame (motion=flow)")


@dataclass(frozen=True)
class SyntheticFrame:
    index: int
    image: np.ndarray  # HxWx3 uint8 BGR
    truth: Detections
    um_per_pixel: float = 1.0
    defocus: float = 0.0  # whole-frame blur sigma of this frame (px): the truth about its focus
    truth_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))  # object id per truth box

    def truth_sizes_um(self) -> tuple[np.ndarray, np.ndarray]:
        """True (width, height) of every labelled object in µm."""
        return self.truth.width * self.um_per_pixel, self.truth.height * self.um_per_pixel


@dataclass
class _Object:
    class_id: int
    x: float  # sprite top-left in world coordinates
    y: float
    sprite: np.ndarray  # float32 intensity change
    box: tuple[int, int, int, int]  # tight object extent inside the sprite (x1, y1, x2, y2)
    step: float  # Brownian step in pixels per frame
    visible: bool = True  # drawn either way; labelled only if a person could tell it from the noise
    oid: int = -1  # persistent identity; a new one when the object leaves and another enters
    heading: float = float("nan")  # radians, swimmers only


def _illumination(width: int, height: int, vignetting: float, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cx = width * rng.uniform(0.4, 0.6)
    cy = height * rng.uniform(0.4, 0.6)
    r2 = ((xx - cx) / width) ** 2 + ((yy - cy) / height) ** 2
    field = 1.0 - vignetting * r2 / r2.max()
    tilt = rng.uniform(-0.06, 0.06, size=2).astype(np.float32)
    field *= 1.0 + tilt[0] * (xx / width - 0.5) + tilt[1] * (yy / height - 0.5)
    return (field * _BACKGROUND_LEVEL).astype(np.float32)


def _blur(sprite: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.3:
        return sprite
    return cv2.GaussianBlur(sprite, (0, 0), sigma)


def _cell(rng: np.random.Generator, size: float) -> tuple[np.ndarray, np.ndarray]:
    """A round-ish cell: pale body, dark membrane, darker nucleus, faint bright halo."""
    a, b = size / 2, size / 2 * rng.uniform(0.75, 1.0)
    pad = int(size * 0.25) + 6
    dim = int(size + 2 * pad)
    c = (dim / 2, dim / 2)
    angle = rng.uniform(0, 180)
    mask = np.zeros((dim, dim), np.uint8)
    cv2.ellipse(mask, (c, (2 * a, 2 * b), angle), 255, -1, cv2.LINE_AA)
    halo = np.zeros_like(mask)
    cv2.ellipse(halo, (c, (2 * a + 6, 2 * b + 6), angle), 255, 3, cv2.LINE_AA)
    ring = np.zeros_like(mask)
    cv2.ellipse(ring, (c, (2 * a, 2 * b), angle), 255, max(1, int(size / 14)), cv2.LINE_AA)
    nucleus = np.zeros_like(mask)
    off = rng.uniform(-0.2, 0.2, 2) * size / 2
    cv2.ellipse(nucleus, ((c[0] + off[0], c[1] + off[1]), (a * 0.8, b * 0.7), rng.uniform(0, 180)), 255, -1, cv2.LINE_AA)
    sprite = (
        -rng.uniform(15, 30) * mask.astype(np.float32)
        - rng.uniform(35, 55) * ring.astype(np.float32)
        - rng.uniform(40, 60) * nucleus.astype(np.float32)
        + 18.0 * halo.astype(np.float32)
    ) / 255.0
    return sprite, mask


def _crystal(rng: np.random.Generator, size: float) -> tuple[np.ndarray, np.ndarray]:
    """An angular crystal: straight edges, sharp corners, bright facets with dark outlines."""
    pad = 6
    dim = int(size + 2 * pad)
    n = int(rng.integers(4, 7))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n)) + rng.uniform(0, np.pi)
    elong = rng.uniform(0.35, 1.0)
    radii = size / 2 * rng.uniform(0.75, 1.0, n)
    pts = np.stack([np.cos(angles) * radii, np.sin(angles) * radii * elong], axis=1)
    rot = rng.uniform(0, np.pi)
    r = np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
    pts = pts @ r.T + dim / 2
    poly = np.round(pts * 16).astype(np.int32)  # 4 fractional bits for smooth edges
    mask = np.zeros((dim, dim), np.uint8)
    cv2.fillPoly(mask, [poly], 255, cv2.LINE_AA, shift=4)
    edge = np.zeros_like(mask)
    cv2.polylines(edge, [poly], True, 255, max(1, int(size / 18)), cv2.LINE_AA, shift=4)
    facet = np.zeros_like(mask)
    cv2.fillPoly(facet, [np.round((pts * 0.55 + dim / 2 * 0.45) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    sprite = (
        rng.uniform(30, 55) * mask.astype(np.float32)
        + rng.uniform(20, 40) * facet.astype(np.float32)
        - rng.uniform(90, 120) * edge.astype(np.float32)
    ) / 255.0
    return sprite, mask


def _debris(rng: np.random.Generator, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Small, irregular, very dark specks."""
    pad = 5
    dim = int(size + 2 * pad)
    n = 7
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 1)
    radii = size / 2 * rng.uniform(0.55, 1.0, n)
    pts = np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1) + dim / 2
    mask = np.zeros((dim, dim), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    sprite = -rng.uniform(80, 120) * mask.astype(np.float32) / 255.0
    return sprite, mask


_SHAPES = (_cell, _crystal, _debris)
_SIZE_RANGES = ((24.0, 80.0), (12.0, 60.0), (6.0, 16.0))


# A defocused crystal's bright facets and dark rim blur into each other until it is a faint smudge
# nobody would label: objects whose strongest contrast is under 4 noise sigmas are drawn, not labelled.
_VISIBLE_SNR = 4.0


def _noise_sigma(config: SyntheticConfig) -> float:
    """Grey-level noise at the background level (shot and read noise together)."""
    return float(np.hypot(config.shot_noise * np.sqrt(_BACKGROUND_LEVEL), config.read_noise))


def _make_object(rng: np.random.Generator, config: SyntheticConfig, class_id: int, x: float, y: float) -> _Object:
    lo, hi = _SIZE_RANGES[class_id]
    size = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    sprite, mask = _SHAPES[class_id](rng, size)
    ys, xs = np.nonzero(mask > 96)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    sprite = _blur(sprite, float(rng.uniform(0, config.max_defocus)))
    step = config.brownian * float(np.sqrt(20.0 / size))
    h, w = sprite.shape
    visible = float(np.abs(sprite).max()) >= _VISIBLE_SNR * _noise_sigma(config)
    return _Object(class_id, x - w / 2, y - h / 2, sprite.astype(np.float32), box, step, visible)


_PLACEMENT_TRIES = 20
# Objects settle in one focal plane: they may touch and overlap at the edges, but one lying mostly
# on top of another would be hidden in the image while still labelled, which no person would do.
_MAX_STACKING = 0.5


def _world_box(obj: _Object) -> np.ndarray:
    x1, y1, x2, y2 = obj.box
    return np.array([obj.x + x1, obj.y + y1, obj.x + x2, obj.y + y2])


def _stacked(box: np.ndarray, placed: np.ndarray) -> bool:
    """Whether over half of the smaller extent of `box` and any placed box lies inside the other."""
    iw = np.minimum(box[2], placed[:, 2]) - np.maximum(box[0], placed[:, 0])
    ih = np.minimum(box[3], placed[:, 3]) - np.maximum(box[1], placed[:, 1])
    inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
    areas = (placed[:, 2] - placed[:, 0]) * (placed[:, 3] - placed[:, 1])
    smaller = np.minimum((box[2] - box[0]) * (box[3] - box[1]), areas)
    return bool((inter > _MAX_STACKING * smaller).any())


class SyntheticMicroscope:
    """Frames of a simulated sample, with the exact boxes of what is in them.

    `read()` advances time (drift and Brownian motion); `new_scene()` draws a fresh sample, which is
    what dataset generation wants between frames.
    """

    classes: tuple[str, ...] = CLASSES

    def __init__(self, config: SyntheticConfig | None = None, **overrides: object) -> None:
        base = config or SyntheticConfig()
        self.config = base.model_copy(update=overrides) if overrides else base
        if overrides:
            self.config = SyntheticConfig.model_validate(self.config.model_dump())
        cfg = self.config
        self._rng = np.random.default_rng(cfg.seed)
        self._noise = self._rng.standard_normal(
            (cfg.height + _NOISE_PAD, cfg.width + _NOISE_PAD), dtype=np.float32
        )
        self._canvas = np.empty((cfg.height, cfg.width), np.float32)
        self._shot = np.empty_like(self._canvas)
        self._gray = np.empty((cfg.height, cfg.width), np.uint8)
        self._index = 0
        self._drift_angle = float(self._rng.uniform(0, 2 * np.pi))
        self._next_id = 0
        self.new_scene()

    @property
    def width(self) -> int:
        return self.config.width

    @property
    def height(self) -> int:
        return self.config.height

    def new_scene(self) -> None:
        """Draw a new sample: illumination, object population, clusters."""
        cfg, rng = self.config, self._rng
        self._background = _illumination(cfg.width, cfg.height, cfg.vignetting, rng)
        count = max(1, int(rng.poisson(cfg.density * cfg.width * cfg.height / 1e6)))
        mix = np.asarray(cfg.class_mix, np.float64)
        class_ids = rng.choice(len(CLASSES), size=count, p=mix / mix.sum())
        objects: list[_Object] = []
        placed = np.empty((count, 4))  # world boxes of `objects`, for one vectorised stacking test
        for class_id in class_ids:
            obj = _make_object(rng, cfg, int(class_id), 0.0, 0.0)
            for _ in range(_PLACEMENT_TRIES):
                if objects and rng.uniform() < cfg.cluster_fraction:
                    x, y = self._beside(objects[int(rng.integers(len(objects)))], rng)
                else:
                    x, y = rng.uniform(0, cfg.width), rng.uniform(0, cfg.height)
                h, w = obj.sprite.shape
                obj.x, obj.y = x - w / 2, y - h / 2
                box = _world_box(obj)
                if not _stacked(box, placed[: len(objects)]):
                    placed[len(objects)] = box
                    objects.append(obj)
                    break
        self._objects = objects
        for obj in objects:
            obj.oid = self._new_id()
        if cfg.motion == "swim":
            swimmers = [o for o in objects if o.class_id in kinematics.SWIMMING_CLASSES]
            for obj, heading in zip(swimmers, kinematics.swim_heading(rng, len(swimmers)), strict=True):
                obj.heading = float(heading)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    @staticmethod
    def _beside(other: _Object, rng: np.random.Generator) -> tuple[float, float]:
        x1, y1, x2, y2 = other.box
        radius = max(x2 - x1, y2 - y1) / 2
        angle = rng.uniform(0, 2 * np.pi)
        dist = radius * rng.uniform(1.0, 1.6)
        h, w = other.sprite.shape
        cx, cy = other.x + w / 2, other.y + h / 2
        return cx + np.cos(angle) * dist, cy + np.sin(angle) * dist

    def _move(self) -> None:
        cfg, rng = self.config, self._rng
        self._drift_angle += float(rng.normal(0, 0.02))
        dx, dy = np.cos(self._drift_angle) * cfg.drift, np.sin(self._drift_angle) * cfg.drift
        steps = rng.standard_normal((len(self._objects), 2))
        if cfg.motion == "flow":
            self._flow(dx, dy, steps)
            return
        own = self._swim() if cfg.motion == "swim" else np.zeros((len(self._objects), 2))
        span_x, span_y = cfg.width + 200, cfg.height + 200
        for obj, (sx, sy), (vx, vy) in zip(self._objects, steps, own, strict=True):
            x, y = obj.x + dx + vx + sx * obj.step, obj.y + dy + vy + sy * obj.step
            obj.x = (x + 100) % span_x - 100
            obj.y = (y + 100) % span_y - 100
            if abs(obj.x - x) > 1 or abs(obj.y - y) > 1:
                obj.oid = self._new_id()  # left the field; what comes in at the far side is another object

    def _swim(self) -> np.ndarray:
        """Own velocities (px/frame) of all objects; swimmers' headings turn a little each frame."""
        headings = np.array([o.heading for o in self._objects])
        moving = np.isfinite(headings)
        headings[moving] += self._rng.normal(0, self.config.swim_turn, int(moving.sum()))
        for obj, heading in zip(self._objects, headings, strict=True):
            obj.heading = float(heading)
        return np.where(moving[:, None], kinematics.swim_velocity(np.nan_to_num(headings), self.config.swim_speed), 0.0)

    def _flow(self, dx: float, dy: float, steps: np.ndarray) -> None:
        """Advect along the channel, drop what left at the right, let new objects in at the left."""
        cfg, rng = self.config, self._rng
        kept: list[_Object] = []
        for obj, (sx, sy) in zip(self._objects, steps, strict=True):
            h, w = obj.sprite.shape
            cy = float(np.clip(obj.y + h / 2 + dy + sy * obj.step, 0, cfg.height))
            obj.x += dx + float(kinematics.flow_speed_at(cy, cfg.height, cfg.flow_speed)) + sx * obj.step
            obj.y = cy - h / 2
            if obj.x < cfg.width + 100:
                kept.append(obj)
        arrivals = int(rng.poisson(kinematics.inflow_per_frame(cfg.density, cfg.height, cfg.flow_speed)))
        mix = np.asarray(cfg.class_mix, np.float64)
        for class_id, row in zip(rng.choice(len(CLASSES), size=arrivals, p=mix / mix.sum()),
                                 kinematics.inflow_rows(rng, arrivals, cfg.height), strict=True):
            obj = _make_object(rng, cfg, int(class_id), 0.0, float(row))
            obj.x = -obj.sprite.shape[1] / 2 - float(rng.uniform(0, cfg.flow_speed))
            placed = np.array([_world_box(o) for o in kept]).reshape(-1, 4)
            if not _stacked(_world_box(obj), placed):
                obj.oid = self._new_id()
                kept.append(obj)
        self._objects = kept

    def render(self) -> SyntheticFrame:
        """The current state as an image, without advancing time."""
        canvas = self._canvas
        np.copyto(canvas, self._background)
        boxes, class_ids, ids = [], [], []
        for obj in self._objects:
            box = self._paste(canvas, obj)
            if box is not None and obj.visible:
                boxes.append(box)
                class_ids.append(obj.class_id)
                ids.append(obj.oid)
        defocus = self.frame_defocus(self._index)
        if defocus >= 0.3:  # the optics blur the sample; the sensor noise that follows stays sharp
            cv2.GaussianBlur(canvas, (0, 0), defocus, canvas)
        if self.config.exposure != 1.0:
            canvas *= self.config.exposure
        self._add_noise(canvas)
        cv2.convertScaleAbs(canvas, self._gray)
        image = cv2.cvtColor(self._gray, cv2.COLOR_GRAY2BGR)
        truth = Detections(
            np.asarray(boxes, np.float32).reshape(-1, 4),
            np.ones(len(boxes), np.float32),
            np.asarray(class_ids, np.int32),
        )
        return SyntheticFrame(self._index, image, truth, self.config.um_per_pixel, defocus, np.asarray(ids, np.int64))

    def frame_defocus(self, index: int) -> float:
        """Whole-frame blur sigma at frame `index`: `defocus` plus a raised-cosine drift."""
        cfg = self.config
        phase = (index % cfg.focus_period) / cfg.focus_period
        return cfg.defocus + cfg.focus_drift * 0.5 * (1.0 - float(np.cos(2 * np.pi * phase)))

    def _paste(self, canvas: np.ndarray, obj: _Object) -> tuple[float, float, float, float] | None:
        h, w = obj.sprite.shape
        x0, y0 = int(round(obj.x)), int(round(obj.y))
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x0 + w, self.width), min(y0 + h, self.height)
        if cx1 <= cx0 or cy1 <= cy0:
            return None
        canvas[cy0:cy1, cx0:cx1] += obj.sprite[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        bx1, by1, bx2, by2 = obj.box
        full = (bx2 - bx1) * (by2 - by1)
        vx1, vy1 = max(x0 + bx1, 0), max(y0 + by1, 0)
        vx2, vy2 = min(x0 + bx2, self.width), min(y0 + by2, self.height)
        if vx2 <= vx1 or vy2 <= vy1 or (vx2 - vx1) * (vy2 - vy1) < 0.4 * full:
            return None  # mostly outside the field of view: not a countable object
        return float(vx1), float(vy1), float(vx2), float(vy2)

    def _add_noise(self, canvas: np.ndarray) -> None:
        cfg, rng = self.config, self._rng
        ox, oy, px, py = (int(v) for v in rng.integers(0, _NOISE_PAD, 4))
        shot_bank = self._noise[oy : oy + cfg.height, ox : ox + cfg.width]
        read_bank = self._noise[py : py + cfg.height, px : px + cfg.width]
        cv2.sqrt(canvas, self._shot)
        cv2.multiply(self._shot, shot_bank, self._shot, scale=cfg.shot_noise)
        cv2.add(canvas, self._shot, canvas)
        cv2.scaleAdd(read_bank, cfg.read_noise, canvas, canvas)

    def read(self) -> SyntheticFrame:
        """The next frame: time moves on by one frame period."""
        frame = self.render()
        self._index += 1
        self._move()
        return frame

    def __iter__(self) -> SyntheticMicroscope:
        return self

    def __next__(self) -> SyntheticFrame:
        return self.read()
