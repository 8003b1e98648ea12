"""The training plan, decided from the whole dataset before TensorFlow starts, and said out loud.

Everything here reads the annotations of every training image (never only the first one): the one
scale frames are resized by, the network input (= tile) size, the tile overlap, how many
detections the graph may output, how many crops an epoch draws from each image. The plan and its
warnings are printed at the start of `train`, so a lab sees what the recipe will do with its
data, and what it cannot handle well, before waiting a quarter of an hour.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from trainer.config import TrainConfig, auto_scale
from trainer.dataset import Sample
from trainer.split import Split
from trainer.tiling import TilePolicy, frame_scale, sample_scale, scaled_hw, tile_count

_MIN_STEPS = 16
_TILE_SIDE = (64, 1280)  # network input sides, before rounding up to multiples of 32
_MIN_OVERLAP = 48  # input pixels; beyond the object itself, context for the features at its edge
_SQUARE_TILES = (256, 384, 512, 640, 768, 1024)
_PASS_OVERHEAD_PX = 128 * 128  # a network pass costs about this much beyond its pixels (launch, decode)
_MAX_TILES = (16, 64)  # default budget per frame: at least 16, and enough for every training frame, up to 64
_MAX_DETECTIONS = (100, 1000)
_DENSITY_MARGIN = 1.5
# 2 CPU cores, MobileNetV2 0.35, batch 8 of 256 px crops: ~0.18 s per step (docs/trainer.md bench).
_STEP_SECONDS_REF = 0.18
_INFER_SECONDS_PER_MPX = 0.25  # whole-frame validation passes, same machine
_BUDGET_MINUTES = 15.0


def magnification(sample: Sample, um_per_pixel: float | None) -> float:
    """How much larger the sample's objects appear at `um_per_pixel` than in its own pixels."""
    return sample_scale(1.0, sample.um_per_pixel, um_per_pixel)


def reference_um_per_pixel(samples: list[Sample]) -> float | None:
    """The µm per pixel every frame is brought to: the most common one of the calibrated frames
    (ties: the finer), so the most frames train at their own pixels. A median could be a pixel
    size no objective has (the midpoint of a 50/50 mix), rescaling every frame."""
    known = [round(float(s.um_per_pixel), 6) for s in samples if s.um_per_pixel]
    if not known:
        return None
    counts = Counter(known)
    return min(counts, key=lambda um: (-counts[um], um))


@dataclass(frozen=True)
class BoxStats:
    """Box sizes (input to the scale choice) over a list of samples, in frame pixels."""

    sqrt_area: np.ndarray
    longest: np.ndarray
    per_image: np.ndarray  # objects per image

    @classmethod
    def of(cls, samples: list[Sample], um_per_pixel: float | None = None) -> BoxStats:
        """With `um_per_pixel`, sizes as they are at that pixel size (calibrated frames of other
        magnifications are resized to it in training and on the device)."""
        boxes = [s.boxes.reshape(-1, 4) * magnification(s, um_per_pixel) for s in samples]
        xyxy = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
        w, h = np.clip(xyxy[:, 2] - xyxy[:, 0], 0, None), np.clip(xyxy[:, 3] - xyxy[:, 1], 0, None)
        return cls(np.sqrt(w * h), np.maximum(w, h), np.array([len(b) for b in boxes], int))


@dataclass
class TrainingPlan:
    """What the run will do; printed at the start and stored in model.json metrics.training.plan."""

    policy: TilePolicy
    max_detections: int
    steps_per_epoch: int
    epochs: int
    train_images: int
    val_images: int
    frame_sizes: dict[str, int]
    expected_minutes: float  # on 2 CPU cores (a GPU run: measured after the first epoch)
    passes: str  # how each frame size runs: one pass, N tiles, or shrunk first
    warnings: list[str] = field(default_factory=list)
    um_per_pixel: float | None = None  # the frames' µm per pixel `policy.scale` is for (median of the calibrated ones)
    validation: dict[str, Any] = field(default_factory=dict)  # images, groups, val_groups, closest (trainer/split.py)
    gpu: bool = False  # planned for a GPU trainer (more steps: trainer/config.py TARGET_STEPS_GPU)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "policy": {**asdict(self.policy), "input_hw": list(self.policy.input_hw)}}


def _snap_up(value: float) -> int:
    lo, hi = _TILE_SIDE
    return int(math.ceil(min(max(value, lo), hi) / 32) * 32)


def _overlap(stats: BoxStats, scale: float, tile_hw: tuple[int, int]) -> int:
    """Wide enough that every object lies whole in the tile whose core holds its centre."""
    biggest = float(np.percentile(stats.longest, 99)) * scale if len(stats.longest) else 0.0
    wanted = int(math.ceil(max(_MIN_OVERLAP, 1.25 * biggest) / 16) * 16)
    return min(wanted, min(tile_hw) // 2)


def _tile_cost(sizes: Counter[tuple[int, int]], policy: TilePolicy) -> float:
    """Network pixels to run every frame of the dataset once, plus a fixed cost per pass."""
    area = policy.input_hw[0] * policy.input_hw[1] + _PASS_OVERHEAD_PX
    return float(sum(n * tile_count(hw, policy.scale, policy) * area for hw, n in sizes.items()))


def _candidate_tiles(sizes: Counter[tuple[int, int]], scale: float) -> list[tuple[int, int]]:
    """Each frame size at the scale (rounded up to 32s), and square tiles between them."""
    fitted = {(_snap_up(h), _snap_up(w)) for h, w in (scaled_hw(hw, scale) for hw in sizes)}
    longest = max(max(t) for t in fitted)
    squares = {(side, side) for side in _SQUARE_TILES if min(min(t) for t in fitted) < side < longest}
    return sorted(fitted | squares)


def choose_policy(sizes: Counter[tuple[int, int]], stats: BoxStats, config: TrainConfig) -> TilePolicy:
    """One scale for every frame; the tile that costs the least network pixels over the dataset.

    With `input_size` the longest side of the most common frame becomes that many pixels instead.
    """
    if config.input_size:
        ref = sizes.most_common(1)[0][0]
        scale = config.input_size / max(ref)
        h, w = scaled_hw(ref, scale)
        candidates = [(_snap_up(h), _snap_up(w))]
    else:
        scale = auto_scale(stats.sqrt_area)
        candidates = _candidate_tiles(sizes, scale)
    best: TilePolicy | None = None
    for tile in candidates:
        policy = TilePolicy(scale, tile, _overlap(stats, scale, tile), _MAX_TILES[1])
        if best is None or _tile_cost(sizes, policy) < _tile_cost(sizes, best):
            best = policy
    assert best is not None
    needed = max(tile_count(hw, scale, best) for hw in sizes)
    return TilePolicy(scale, best.input_hw, best.overlap, int(np.clip(needed, *_MAX_TILES)))


def auto_max_detections(stats: BoxStats, config: TrainConfig) -> int:
    """1.5x the most objects in one training image, at least 100 (unless --max-detections is set)."""
    if config.max_detections:
        return config.max_detections
    most = int(stats.per_image.max()) if len(stats.per_image) else 0
    return int(np.clip(math.ceil(_DENSITY_MARGIN * most), *_MAX_DETECTIONS))


def crops_per_image(frame_hw: tuple[int, int], scale: float, crop: int) -> int:
    """Crops that cover the scaled frame once: how often an epoch draws this image."""
    h, w = scaled_hw(frame_hw, scale)
    return max(1, math.ceil(h * w / crop**2))


def steps_per_epoch(train: list[Sample], scale: float, config: TrainConfig, um_per_pixel: float | None = None) -> int:
    """Enough crops to cover every training pixel once at the training scale, at least 16 steps."""
    crops = sum(crops_per_image(s.image.shape[:2], scale * magnification(s, um_per_pixel), config.crop) for s in train)
    return max(_MIN_STEPS, math.ceil(crops / config.batch_size))


def expected_minutes(steps: int, val: list[Sample], policy: TilePolicy, config: TrainConfig, evaluations: int) -> float:
    """A rough forecast for 2 CPU cores (measured again after the first epoch)."""
    step_s = _STEP_SECONDS_REF * config.batch_size * config.crop**2 / (8 * 256**2) * max(1.0, config.width_multiplier / 0.35)
    tile_px = policy.input_hw[0] * policy.input_hw[1]
    val_mpx = sum(tile_count(s.image.shape[:2], frame_scale(s.image.shape[:2], policy), policy) for s in val) * tile_px / 1e6
    return (steps * step_s + (evaluations + 2) * val_mpx * _INFER_SECONDS_PER_MPX) / 60.0 + 0.5


def _size_label(hw: tuple[int, int]) -> str:
    return f"{hw[1]}x{hw[0]}"


def _scale_warnings(samples: list[Sample], policy: TilePolicy, sizes: Counter[tuple[int, int]],
                    um_per_pixel: float | None = None) -> list[str]:
    """Objects the one scale leaves too small or too large, and frames that need too many tiles."""
    out: list[str] = []
    by_size: dict[tuple[int, int], list[Sample]] = {}
    for s in samples:
        by_size.setdefault(s.image.shape[:2], []).append(s)
    medians = {hw: float(np.median(BoxStats.of(group, um_per_pixel).sqrt_area)) for hw, group in by_size.items()
               if sum(len(g.boxes) for g in group)}
    if len(medians) > 1 and max(medians.values()) > 2.5 * min(medians.values()):
        lo, hi = min(medians, key=medians.__getitem__), max(medians, key=medians.__getitem__)
        out.append(f"objects differ in size between frame sizes (median {medians[lo]:.0f} px in {_size_label(lo)} "
                   f"frames, {medians[hi]:.0f} px in {_size_label(hi)}): one scale ({policy.scale:.2f}x) suits "
                   "them unequally; if these are different magnifications, give the frames their µm per pixel "
                   "(calibrate the captures) so each is resized to one object size, or train one model per microscope")
    stats = BoxStats.of(samples, um_per_pixel)
    if len(stats.sqrt_area):
        small = float(np.percentile(stats.sqrt_area, 10)) * policy.scale
        if small < 8:
            out.append(f"the small objects will be ~{small:.0f} px at the network's scale (under 8 px boxes rarely reach IoU 0.5 "
                       "on its 4-px grid): image them at a higher magnification")
        big = float(np.percentile(stats.longest, 99)) * policy.scale
        if big > policy.overlap and any(tile_count(hw, policy.scale, policy) > 1 for hw in sizes):
            out.append(f"the largest objects ({big:.0f} px at the network's scale) are wider than the tile overlap allows "
                       f"({policy.overlap} px): in frames cut into tiles some may be split or counted twice")
    shrunk = [hw for hw in sizes if frame_scale(hw, policy) < policy.scale]
    if shrunk:
        out.append(f"frames of {', '.join(_size_label(hw) for hw in shrunk)} would need more than {policy.max_tiles} tiles: "
                   "they are shrunk to fit, and their objects are seen smaller than trained")
    return out


MIN_VAL_IMAGES_TO_STOP_EARLY = 5  # a score on fewer validation frames is too noisy to call a stall


def may_stop_early(val_images: int) -> bool:
    """Early stopping only where validation can tell a stall from noise (a 1-frame split cannot)."""
    return val_images >= MIN_VAL_IMAGES_TO_STOP_EARLY


def _data_warnings(train: list[Sample], val: list[Sample], classes: list[str], max_detections: int, config: TrainConfig) -> list[str]:
    out: list[str] = []
    if len(train) < 30:
        out.append(f"only {len(train)} training images: expect a model that has seen too little; annotate more")
    if not val:
        out.append("no validation images: the best epoch and the score threshold are chosen on nothing")
    elif not may_stop_early(len(val)):
        out.append(f"only {len(val)} validation images: too few to tell a stall from noise, so every planned "
                   "epoch is trained (no early stop); the count thresholds rest on these few images")
    counts = np.bincount(np.concatenate([s.classes for s in train] or [np.zeros(0, int)]).astype(int), minlength=len(classes))
    rare = [f"{name} ({int(n)})" for name, n in zip(classes, counts, strict=True) if n < 20]
    if rare:
        out.append(f"few training objects of {', '.join(rare)}: these classes will be found poorly")
    most = int(BoxStats.of(train).per_image.max()) if train else 0
    if most > max_detections:
        out.append(f"an image holds {most} objects but the model outputs at most {max_detections} per tile (--max-detections)")
    return out


MIN_TRUSTED_VAL_IMAGES = 10
MIN_TRUSTED_VAL_OBJECTS = 100
MIN_TRUSTED_VAL_GROUPS = 3


def validation_warnings(split: Split) -> list[str]:
    """When the validation figures cannot be believed: too few frames, objects or independent groups."""
    out = list(split.notes)
    if not split.val:
        return out
    objects = int(sum(len(s.boxes) for s in split.val))
    if len(split.val) < MIN_TRUSTED_VAL_IMAGES or objects < MIN_TRUSTED_VAL_OBJECTS:
        out.append(f"validation holds {len(split.val)} images and {objects} objects: its mAP can move by 0.1 from one "
                   "frame to the next; judge the model on a held-out package")
    if split.groups > 1 and split.val_groups < MIN_TRUSTED_VAL_GROUPS:
        out.append(f"validation comes from {split.val_groups} of {split.groups} independent acquisitions/fields: it measures "
                   "those few, not the sample")
    return out


def make_plan(train: list[Sample], val: list[Sample], classes: list[str], config: TrainConfig, gpu: bool = False) -> TrainingPlan:
    """Everything decided before training; `config.epochs` 0 becomes a step budget (see config),
    larger where training runs on a GPU (`gpu`)."""
    from trainer.config import resolve_epochs

    samples = train + val
    sizes: Counter[tuple[int, int]] = Counter((int(s.image.shape[0]), int(s.image.shape[1])) for s in samples)
    um = reference_um_per_pixel(samples)
    policy = choose_policy(sizes, BoxStats.of(train, um), config)
    max_detections = auto_max_detections(BoxStats.of(train), config)
    steps = steps_per_epoch(train, policy.scale, config, um)
    epochs = resolve_epochs(config, steps, gpu).epochs
    plan = TrainingPlan(policy, max_detections, steps, epochs, len(train), len(val),
                        {_size_label(hw): n for hw, n in sizes.most_common()},
                        round(expected_minutes(steps * epochs, val, policy, config, 10), 1), _passes(sizes, policy))
    plan.um_per_pixel, plan.gpu = um, gpu
    plan.warnings = _scale_warnings(samples, policy, sizes, um) + _data_warnings(train, val, classes, max_detections, config)
    if plan.expected_minutes > _BUDGET_MINUTES and not gpu:
        plan.warnings.append(f"expected to take ~{plan.expected_minutes:.0f} min on 2 CPU cores: pass fewer --epochs, "
                             "a smaller --crop, or train on a faster machine")
    return plan


def _passes(sizes: Counter[tuple[int, int]], policy: TilePolicy) -> str:
    """How each frame size runs: one padded pass, or so many overlapping tiles."""
    tiled = {}
    for hw in sizes:
        scale = frame_scale(hw, policy)
        if (n := tile_count(hw, scale, policy)) > 1:
            tiled[_size_label(hw)] = f"{n} tiles" + ("" if scale == policy.scale else f" after shrinking to {scale:.3f}x")
    if not tiled:
        return "every frame in one pass"
    rest = ", the rest in one pass" if len(tiled) < len(sizes) else ""
    return (f"{'; '.join(f'{k} as {v}' for k, v in tiled.items())} (overlap {policy.overlap} px, "
            f"at most {policy.max_tiles} per frame){rest}")


def describe(plan: TrainingPlan) -> str:
    """The plan as a few lines a person reads at the start of a run."""
    p = plan.policy
    sizes = ", ".join(f"{k} ({n})" for k, n in plan.frame_sizes.items())
    lines = [
        f"training plan: {plan.train_images} training and {plan.val_images} validation images; frames {sizes}",
        f"  scale {p.scale:.3f}x for every frame (aspect kept, padded); network input {p.input_hw[1]}x{p.input_hw[0]}, "
        f"{plan.passes}",
        f"  up to {plan.max_detections} detections per tile; {plan.epochs} epochs x {plan.steps_per_epoch} steps "
        f"(stops early when validation stops improving); "
        + ("planned for the GPU: the time limit is measured against its pace after the first epoch" if plan.gpu
           else f"expected ~{plan.expected_minutes:.0f} min on 2 CPU cores"),
    ]
    v = plan.validation
    if v.get("groups"):
        closest = f"; closest validation/training pair correlates {v['closest']:.2f}" if v.get("closest") is not None else ""
        lines.append(f"  validation: {v['images']} images from {v['val_groups']} of {v['groups']} independent acquisitions/fields "
                     f"(near-copies kept on one side){closest}")
    if plan.um_per_pixel:
        lines.append(f"  {plan.um_per_pixel:.4g} µm per frame pixel at scale {p.scale:.3f}x: calibrated frames of other "
                     "magnifications are resized to it, in training and on the device")
    lines += [f"  warning: {w}" for w in plan.warnings]
    return "\n".join(lines)
