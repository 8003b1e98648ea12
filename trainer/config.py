"""Training options, validated in one place (CLI flags map onto these fields one to one)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from device.inference.pixels import PixelRule, parse_rule


class TrainConfig(BaseModel):
    """Everything a training run needs besides the package and the output folder."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(
        0, ge=0, le=10000, description="Passes over the training split (0: as many as make about "
        "3600 training steps)"
    )
    input_size: int = Field(
        0, ge=0, le=2048, description="Longest side of the network input; the other side follows the "
        "images' aspect ratio, both rounded to multiples of 32 (0: chosen from the object sizes so the "
        "small objects span 12-24 px)"
    )
    width_multiplier: float = Field(0.35, gt=0, le=1.4, description="MobileNetV2 alpha (0.35 suits a Jetson Nano)")
    weights: str = Field("none", description="Backbone weights: none, imagenet (downloads) or a MobileNetV2 "
                         "weights file the lab brings (e.g. from `python -m trainer pretrain`)")
    seed: int = Field(0, description="Same seed, same split, augmentation and initial weights")
    batch_size: int = Field(8, ge=1, le=256, description="Crops per training step")
    crop: int = Field(256, ge=64, le=2048, description="Side of the square training crops, multiple of 32")
    learning_rate: float = Field(3e-3, gt=0, le=1, description="Peak learning rate (cosine decay)")
    val_fraction: float = Field(0.15, ge=0, lt=1, description="Share of images held out for validation")
    max_detections: int = Field(
        0, ge=0, le=1000, description="Top-K peaks the model outputs per network input (0: 1.5x the most objects "
        "in a training image, at least 100)"
    )
    time_limit_min: float = Field(
        14.0, ge=0, le=10000, description="With the default epoch count, wind training down early enough that "
        "the whole run ends within this many minutes on this machine (0: no limit)"
    )
    eval_every: int = Field(0, ge=0, description="Evaluate every N epochs (0: about ten times per run)")
    init_from: str = Field("", description="A bundle folder whose warm_start weights seed this training (warm start; "
                           "the same classes or more, the same width multiplier)")
    box_loss: Literal["l1", "l1+giou"] = Field("l1", description="Box regression: l1 (log size and offset at centres) "
                                               "or l1+giou (plus a GIoU loss on the decoded boxes; bench/box_loss.py)")
    pixels: str = Field("percentile", description="How frames over 8 bits become the model's 8-bit pixels, in training and "
                        "on the device: percentile (per frame, 0.1 -> 99.99 %), percentile:LOW:HIGH or range:BLACK:WHITE "
                        "(fixed camera counts, e.g. range:100:4095); 8-bit frames are unchanged")
    folds: int = Field(-1, ge=-1, le=10, description="Cross-validation of small packages (figures only; the bundle is the "
                       "one model): -1 auto (3 folds of whole acquisitions for packages of at most 80 images, when the time "
                       "limit leaves room for them), 0 off, 2-10 that many folds")
    name: str = Field("", description="Model name in the bundle (default: the dataset's project)")
    version: str = Field("", description="Model version (default: date and time of the run)")

    @field_validator("folds")
    @classmethod
    def _not_one_fold(cls, value: int) -> int:
        if value == 1:
            raise ValueError("folds 1 is no cross-validation: use 0 (off), -1 (auto) or 2-10")
        return value

    @field_validator("crop")
    @classmethod
    def _multiple_of_32(cls, value: int) -> int:
        if value % 32:
            raise ValueError(f"crop {value} must be a multiple of 32")
        return value

    @field_validator("pixels")
    @classmethod
    def _pixels(cls, value: str) -> str:
        parse_rule(value)  # refused here, with what is accepted, before any training
        return value

    def pixel_rule(self) -> PixelRule:
        return parse_rule(self.pixels)

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: str) -> str:
        return value if value not in ("", "None") else "none"

    def backbone_weights(self) -> str | None:
        return None if self.weights == "none" else self.weights


TARGET_STEPS = 3600  # what the default run trains for: ~12 min on 2 CPU cores, inside the 15 min target
# On a GPU trainer the same time limit buys many more steps: the default plans this many, so the
# schedule is laid out for them from the start (a CPU plan would end early and leave the GPU idle).
# An estimate (batch 8 of 256 px on a MobileNetV2-0.35 takes tens of ms on a desktop GPU, so ~10 min),
# not a measurement: no GPU was lent to this project yet. The time limit still cuts a slow GPU's run.
TARGET_STEPS_GPU = 20_000


def resolve_epochs(config: TrainConfig, steps_per_epoch: int, gpu: bool = False) -> TrainConfig:
    """The config with `epochs` fixed: auto (0) means about TARGET_STEPS steps (TARGET_STEPS_GPU where
    training runs on a GPU), 3 to 300 epochs (1000 on a GPU)."""
    if config.epochs:
        return config
    target, most = (TARGET_STEPS_GPU, 1000) if gpu else (TARGET_STEPS, 300)
    epochs = min(most, max(3, round(target / steps_per_epoch)))
    return config.model_copy(update={"epochs": epochs})


# The head sees the image on a 4-pixel grid: an object much under 12 px is a cell or two wide and
# its box cannot be placed to IoU 0.5; one much over 24 px wastes compute at this resolution.
_SMALL_OBJECT_PX = (12.0, 24.0)
_AUTO_SCALE = (0.5, 2.0)
_AUTO_LONGEST = (128, 1280)


def auto_scale(box_sizes: np.ndarray) -> float:
    """Image scale that brings the small objects (10th percentile of sqrt(w*h)) to 12-24 px."""
    if not len(box_sizes):
        return 1.0
    small = float(np.percentile(box_sizes, 10))
    lo, hi = _SMALL_OBJECT_PX
    scale = lo / small if small < lo else hi / small if small > hi else 1.0
    return float(np.clip(scale, *_AUTO_SCALE))


def input_hw(config: TrainConfig, image_hw: tuple[int, int], box_sizes: np.ndarray | None = None) -> tuple[int, int]:
    """Network input (height, width): longest side = input_size, aspect kept, multiples of 32.

    With input_size 0 the longest side is the image's, scaled by `auto_scale` of the box sizes.
    """
    h, w = image_hw
    if config.input_size:
        scale = config.input_size / max(h, w)
    else:
        sizes = np.asarray([] if box_sizes is None else box_sizes, np.float64)
        longest = float(np.clip(max(h, w) * auto_scale(sizes), *_AUTO_LONGEST))
        scale = longest / max(h, w)

    def snap(v: float) -> int:
        return max(32, int(round(v / 32)) * 32)

    return snap(h * scale), snap(w * scale)
