"""Pre-training the backbone on the lab's own unlabelled captures (no internet, no labels).

Every device holds thousands of frames nobody will annotate. A masked-denoising pretext learns
from them what this lab's samples look like: crops are hidden in patches and noised, and the
network must paint the clean crop back from the context. Doing so needs the edges, textures and
object shapes the detector later needs too, so fine-tuning on a few annotated frames starts from
features of this microscope rather than from random weights (or ImageNet photographs, which
need a download). The result is a plain MobileNetV2 weights file for `train --weights PATH`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from device.inference.preprocess import resize_to
from trainer.augment import normalize
from trainer.errors import PretrainError, WeightsError
from trainer.model import TAPS, mobilenet_v2

_PATCH = 16  # masked squares: about the size of a small object at the detector's scale


@dataclass(frozen=True)
class PretrainConfig:
    steps: int = 1500
    crop: int = 192
    batch_size: int = 8
    width_multiplier: float = 0.35
    learning_rate: float = 2e-3
    mask_ratio: float = 0.5
    scale: float = 1.0  # resize frames by this first: the scale the detector will see them at
    seed: int = 0


def _random_crop(frame: np.ndarray, config: PretrainConfig, rng: np.random.Generator) -> np.ndarray:
    scale = config.scale * float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    h, w = frame.shape[:2]
    size = (max(config.crop, int(w * scale)), max(config.crop, int(h * scale)))
    image = resize_to(frame, size)
    y = int(rng.integers(0, image.shape[0] - config.crop + 1))
    x = int(rng.integers(0, image.shape[1] - config.crop + 1))
    crop = image[y : y + config.crop, x : x + config.crop]
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(np.rot90(crop, int(rng.integers(4))))


def corrupt(clean: np.ndarray, config: PretrainConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(input, weight map): patches hidden under flat grey, sensor-like noise everywhere else."""
    cells = config.crop // _PATCH
    hidden = rng.uniform(size=(cells, cells)) < config.mask_ratio
    mask = np.kron(hidden, np.ones((_PATCH, _PATCH), bool))[:, :, None]
    noisy = clean + rng.normal(0, rng.uniform(0.02, 0.12), clean.shape).astype(np.float32)
    corrupted = np.where(mask, np.float32(clean.mean()), noisy).astype(np.float32)
    return corrupted, np.where(mask, 1.0, 0.2).astype(np.float32)


def batches(frames: list[np.ndarray], config: PretrainConfig) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(config.seed)
    while True:
        clean = [normalize(_random_crop(frames[int(rng.integers(len(frames)))], config, rng)) for _ in range(config.batch_size)]
        pairs = [corrupt(c, config, rng) for c in clean]
        yield np.stack([p[0] for p in pairs]), np.stack(clean), np.stack([p[1] for p in pairs])


def build_pretext(config: PretrainConfig) -> tuple[keras.Model, keras.Model]:
    """(MobileNetV2 base, the reconstruction model around it): a light top-down decoder to stride 4,
    then bilinear upsampling to the input, so the backbone (not the decoder) must do the work."""
    base = mobilenet_v2(config.width_multiplier)
    c4, c8, c16 = (base.get_layer(name).output for name in TAPS)
    x = layers.Conv2D(48, 1)(c16)
    x = layers.Add()([layers.UpSampling2D(2)(x), layers.Conv2D(48, 1)(c8)])
    x = layers.Add()([layers.UpSampling2D(2)(x), layers.Conv2D(48, 1)(c4)])
    x = layers.SeparableConv2D(48, 3, padding="same", activation="relu")(x)
    out = layers.UpSampling2D(4, interpolation="bilinear")(layers.Conv2D(3, 1)(x))
    return base, keras.Model(base.input, out, name="pretext")


def pretrain(frames: list[np.ndarray], out: Path, config: PretrainConfig, log_every: int = 100) -> dict[str, float]:
    """Train the pretext and write the backbone's weights to `out` (*.weights.h5)."""
    if not out.name.endswith(".weights.h5"):
        raise PretrainError(f"{out}: the weights file name must end in .weights.h5 (Keras' format)")
    if min(min(f.shape[:2]) for f in frames) * config.scale < config.crop / 2:
        raise PretrainError(f"frames are too small for {config.crop}-px crops at scale {config.scale}")
    keras.utils.set_random_seed(config.seed)
    base, model = build_pretext(config)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, config.steps, alpha=0.05)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=1e-4, clipnorm=10.0)

    @tf.function(reduce_retracing=True)
    def step(x: tf.Tensor, y: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(w * tf.square(model(x, training=True) - y)) / tf.reduce_sum(w * tf.ones_like(y))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    started, stream, losses = time.monotonic(), batches(frames, config), []
    for i in range(1, config.steps + 1):
        losses.append(float(step(*next(stream))))
        if i % log_every == 0 or i == config.steps:
            print(f"pretrain step {i}/{config.steps}: loss {np.mean(losses[-log_every:]):.4f}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    base.save_weights(out)
    first = float(np.mean(losses[: max(1, len(losses) // 10)]))
    last = float(np.mean(losses[-max(1, len(losses) // 10) :]))
    return {"steps": config.steps, "frames": len(frames), "first_loss": first, "last_loss": last,
            "seconds": round(time.monotonic() - started, 1), "steps_per_second": config.steps / max(1e-9, time.monotonic() - started)}


def check_weights_file(path: str, width_multiplier: float) -> None:
    """Load the file into a fresh MobileNetV2 of the run's width, or say why it does not fit."""
    if not Path(path).is_file():
        raise WeightsError(f"--weights {path}: no such file (give a MobileNetV2 .weights.h5 or .h5 file, 'imagenet' or 'none')")
    try:
        mobilenet_v2(width_multiplier).load_weights(path)
    except Exception as exc:  # Keras raises ValueError, KeyError or OSError for a file that does not fit
        raise WeightsError(f"--weights {path}: not MobileNetV2 weights for width multiplier {width_multiplier} "
                           f"({type(exc).__name__}: {str(exc)[:160]})") from exc


def default_steps(n_frames: int) -> int:
    """About ten passes over a small set of captures, at least 300 and at most 1500 steps."""
    return int(min(1500, max(300, math.ceil(10 * n_frames / PretrainConfig.batch_size))))
