"""The training loop: random crops in, best-on-validation weights out.

A plain GradientTape loop rather than `model.fit`: it lets one loop drive the progress bar,
progress.json and TensorBoard together, evaluate real mAP on whole validation frames, and stop
cleanly on Ctrl-C keeping the best weights so far.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from trainer.augment import AugmentConfig, augment, encode_targets, normalize
from trainer.config import TrainConfig
from trainer.dataset import Sample
from trainer.losses import detection_loss
from trainer.model import STRIDE, ModelSpec, build_inference_model, build_raw_model
from trainer.predict import evaluate_predictions, keras_runner, predict
from trainer.progress import ProgressReporter


@dataclass
class FitResult:
    raw: keras.Model
    best_map50: float
    best_epoch: int
    epochs_run: int
    interrupted: bool
    history: list[dict[str, float]] = field(default_factory=list)


def _batches(train: list[Sample], base_scale: tuple[float, float], config: TrainConfig, n_classes: int) -> Iterator[tuple[np.ndarray, ...]]:
    """Endless augmented batches (images, heatmap, log_size, offset, mask), seeded."""
    rng = np.random.default_rng(config.seed)
    aug = AugmentConfig(crop=config.crop)
    while True:
        order = rng.permutation(len(train))
        for start in range(0, len(order), config.batch_size):
            picks = order[start : start + config.batch_size]
            if len(picks) < config.batch_size:
                picks = np.concatenate([picks, rng.integers(0, len(train), config.batch_size - len(picks))])
            items = [augment(train[int(i)], base_scale, aug, rng) for i in picks]
            targets = [encode_targets(b, c, (config.crop, config.crop), n_classes) for _, b, c in items]
            yield (
                np.stack([normalize(img) for img, _, _ in items]),
                np.stack([t.heatmap for t in targets]),
                np.stack([t.log_size for t in targets]),
                np.stack([t.offset for t in targets]),
                np.stack([t.mask for t in targets]),
            )


def _pipeline(train: list[Sample], base_scale: tuple[float, float], config: TrainConfig, n_classes: int) -> tf.data.Dataset:
    g = config.crop // STRIDE
    spec = (
        tf.TensorSpec((None, config.crop, config.crop, 3), tf.float32),
        tf.TensorSpec((None, g, g, n_classes), tf.float32),
        tf.TensorSpec((None, g, g, 2), tf.float32),
        tf.TensorSpec((None, g, g, 2), tf.float32),
        tf.TensorSpec((None, g, g, 1), tf.float32),
    )
    source = tf.data.Dataset.from_generator(lambda: _batches(train, base_scale, config, n_classes), output_signature=spec)
    return source.prefetch(2)


def _optimizer(config: TrainConfig, total_steps: int) -> keras.optimizers.Optimizer:
    warmup = max(1, min(total_steps // 20, 100))
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate * 0.1, max(1, total_steps - warmup), alpha=0.02,
        warmup_target=config.learning_rate, warmup_steps=warmup,
    )
    return keras.optimizers.AdamW(schedule, weight_decay=1e-4, clipnorm=10.0)


def _make_step(raw: keras.Model, optimizer: keras.optimizers.Optimizer):  # type: ignore[no-untyped-def]
    @tf.function(reduce_retracing=True)
    def step(images: tf.Tensor, heat: tf.Tensor, size: tf.Tensor, offset: tf.Tensor, mask: tf.Tensor) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            outputs = raw(images, training=True)
            losses = detection_loss(outputs, {"heatmap": heat, "log_size": size, "offset": offset, "mask": mask})
        grads = tape.gradient(losses["total"], raw.trainable_variables)
        optimizer.apply_gradients(zip(grads, raw.trainable_variables, strict=True))
        return losses

    return step


def _eval_epochs(config: TrainConfig) -> set[int]:
    """Epochs after which to score the validation split (checkpointing the best).

    By default about ten times, skipping the first third of the run (early weights never win).
    """
    if config.eval_every:
        return {e for e in range(1, config.epochs + 1) if e % config.eval_every == 0} | {config.epochs}
    every = max(1, math.ceil(config.epochs / 10))
    return {e for e in range(1, config.epochs + 1) if e % every == 0 and e > config.epochs // 3} | {config.epochs}


@dataclass(frozen=True)
class FitPlan:
    """What `fit` needs besides the config: the data and where the run lives."""

    train: list[Sample]
    val: list[Sample]
    classes: list[str]
    input_hw: tuple[int, int]
    work_dir: Path


def fit(plan: FitPlan, config: TrainConfig, reporter: ProgressReporter) -> FitResult:
    """Train, evaluating on the validation frames now and then; Ctrl-C stops and keeps the best."""
    keras.utils.set_random_seed(config.seed)
    spec = ModelSpec(len(plan.classes), config.width_multiplier, weights=config.backbone_weights())
    raw = build_raw_model(spec)
    image_hw = plan.train[0].image.shape[:2]
    base_scale = (plan.input_hw[1] / image_hw[1], plan.input_hw[0] / image_hw[0])
    steps = reporter.steps_per_epoch
    step = _make_step(raw, _optimizer(config, steps * config.epochs))
    inference = build_inference_model(raw, plan.input_hw, config.max_detections)
    checkpoint = plan.work_dir / "best.weights.h5"
    result = FitResult(raw, -1.0, 0, 0, False)
    batches = iter(_pipeline(plan.train, base_scale, config, len(plan.classes)))
    eval_at = _eval_epochs(config)
    try:
        for epoch in range(1, config.epochs + 1):
            sums: dict[str, float] = {}
            for _ in range(steps):
                losses = {k: float(v) for k, v in step(*next(batches)).items()}
                sums = {k: sums.get(k, 0.0) + v for k, v in losses.items()}
                reporter.step(losses["total"], epoch)
            means = {k: v / steps for k, v in sums.items()}
            val = None
            if epoch in eval_at:
                scores = evaluate_predictions(plan.val, predict(keras_runner(inference), plan.val, plan.input_hw), plan.classes)
                val = {"map50": float(scores["map50"]), "map50_95": float(scores["map50_95"])}  # type: ignore[arg-type]
                if val["map50"] > result.best_map50:
                    result.best_map50, result.best_epoch = val["map50"], epoch
                    raw.save_weights(checkpoint)
            result.history.append({"epoch": epoch, **means, **(val or {})})
            result.epochs_run = epoch
            reporter.epoch_done(epoch, means, val)
    except KeyboardInterrupt:
        result.interrupted = True
        reporter.set_state("interrupted", "stopped by Ctrl-C: writing the bundle from the best weights so far")
    if checkpoint.is_file():
        raw.load_weights(checkpoint)
    else:
        raw.save_weights(checkpoint)  # interrupted before the first evaluation: keep what we have
    return result
