"""The training loop: random crops in, best-on-validation weights out.

A plain GradientTape loop rather than `model.fit`: it lets one loop drive the progress bar,
progress.json and TensorBoard together, evaluate real mAP on whole validation frames, and stop
cleanly on Ctrl-C keeping the best weights so far.
"""

from __future__ import annotations

import time
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
from trainer.plan import TrainingPlan, crops_per_image, may_stop_early
from trainer.predict import evaluate_predictions, frame_max_detections, keras_runner, predict
from trainer.progress import ProgressReporter
from trainer.schedule import RunControl, ShrinkableCosine
from trainer.tiling import sample_scale


@dataclass
class FitResult:
    raw: keras.Model
    best_map50: float
    best_epoch: int
    epochs_run: int
    interrupted: bool
    history: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # early stop, time limit
    time_cut: bool = False  # the time limit ended the run before the planned epochs


def _draws(train: list[Sample], scales: list[float], crop: int) -> np.ndarray:
    """Image indices of one epoch: each image as often as crops cover it once (large frames more)."""
    return np.repeat(np.arange(len(train)), [crops_per_image(s.image.shape[:2], k, crop) for s, k in zip(train, scales, strict=True)])


def _batches(train: list[Sample], scales: list[float], config: TrainConfig, n_classes: int) -> Iterator[tuple[np.ndarray, ...]]:
    """Endless augmented batches (images, heatmap, log_size, offset, mask), seeded. `scales`: each
    sample's (the plan's, times its µm per pixel over the trained one where calibrated)."""
    rng = np.random.default_rng(config.seed)
    aug = AugmentConfig(crop=config.crop)
    draws = _draws(train, scales, config.crop)
    while True:
        order = rng.permutation(draws)
        for start in range(0, len(order), config.batch_size):
            picks = order[start : start + config.batch_size]
            if len(picks) < config.batch_size:
                picks = np.concatenate([picks, rng.choice(draws, config.batch_size - len(picks))])
            crops = [augment(train[int(i)], scales[int(i)], aug, rng) for i in picks]
            size = (config.crop, config.crop)
            targets = [encode_targets(c.boxes, c.classes, size, n_classes, (c.ignore, c.ignore_classes)) for c in crops]
            yield (
                np.stack([normalize(c.image) for c in crops]),
                np.stack([t.heatmap for t in targets]),
                np.stack([t.log_size for t in targets]),
                np.stack([t.offset for t in targets]),
                np.stack([t.mask for t in targets]),
            )


def _pipeline(train: list[Sample], scales: list[float], config: TrainConfig, n_classes: int) -> tf.data.Dataset:
    g = config.crop // STRIDE
    spec = (
        tf.TensorSpec((None, config.crop, config.crop, 3), tf.float32),
        tf.TensorSpec((None, g, g, n_classes), tf.float32),
        tf.TensorSpec((None, g, g, 2), tf.float32),
        tf.TensorSpec((None, g, g, 2), tf.float32),
        tf.TensorSpec((None, g, g, 1), tf.float32),
    )
    source = tf.data.Dataset.from_generator(lambda: _batches(train, scales, config, n_classes), output_signature=spec)
    return source.prefetch(2)


def _optimizer(schedule: ShrinkableCosine) -> keras.optimizers.Optimizer:
    return keras.optimizers.AdamW(schedule, weight_decay=1e-4, clipnorm=10.0)


GIOU_WEIGHT = 1.0  # --box-loss l1+giou: the GIoU term beside the L1 terms (each ~0.2-1 once trained)


def _make_step(raw: keras.Model, optimizer: keras.optimizers.Optimizer, giou_weight: float = 0.0):  # type: ignore[no-untyped-def]
    @tf.function(reduce_retracing=True)
    def step(images: tf.Tensor, heat: tf.Tensor, size: tf.Tensor, offset: tf.Tensor, mask: tf.Tensor) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            outputs = raw(images, training=True)
            losses = detection_loss(outputs, {"heatmap": heat, "log_size": size, "offset": offset, "mask": mask}, giou_weight)
        grads = tape.gradient(losses["total"], raw.trainable_variables)
        optimizer.apply_gradients(zip(grads, raw.trainable_variables, strict=True))
        return losses

    return step


@dataclass(frozen=True)
class FitPlan:
    """What `fit` needs besides the config: the data, the decided plan and where the run lives."""

    train: list[Sample]
    val: list[Sample]
    classes: list[str]
    plan: TrainingPlan
    work_dir: Path
    limit_s: float | None = None  # wall time the training loop may take (None: no limit)


def _evaluate(inference: keras.Model, plan: FitPlan) -> dict[str, float]:
    p = plan.plan
    preds = predict(keras_runner(inference), plan.val, p.policy, trained_um=p.um_per_pixel)
    scores = evaluate_predictions(plan.val, preds, plan.classes, frame_max_detections(p.policy, p.max_detections))
    return {"map50": float(scores["map50"]), "map50_95": float(scores["map50_95"])}  # type: ignore[arg-type]


def _apply(control: RunControl, schedule: ShrinkableCosine, reporter: ProgressReporter, epoch: int, epochs_before: int) -> None:
    """Tell the learning rate and the progress bar when the run was shortened."""
    if control.epochs == epochs_before:
        return
    schedule.squeeze(epoch * reporter.steps_per_epoch, (control.epochs - epoch) * reporter.steps_per_epoch)
    reporter.set_epochs(control.epochs)
    reporter.note(control.notes[-1])


def fit(plan: FitPlan, config: TrainConfig, reporter: ProgressReporter) -> FitResult:
    """Train, evaluating on the validation frames now and then; Ctrl-C stops and keeps the best."""
    keras.utils.set_random_seed(config.seed)
    spec = ModelSpec(len(plan.classes), config.width_multiplier, weights=config.backbone_weights())
    raw = build_raw_model(spec)
    if config.init_from:
        from trainer.warmstart import load_into

        reporter.note(load_into(raw, Path(config.init_from), plan.classes))
    steps = reporter.steps_per_epoch
    control = RunControl(plan.plan.epochs, steps, config.eval_every, plan.limit_s, early_stop=may_stop_early(len(plan.val)))
    schedule = ShrinkableCosine(config.learning_rate, steps * control.epochs)
    step = _make_step(raw, _optimizer(schedule), GIOU_WEIGHT if config.box_loss == "l1+giou" else 0.0)
    inference = build_inference_model(raw, plan.plan.policy.input_hw, plan.plan.max_detections)
    checkpoint = plan.work_dir / "best.weights.h5"
    result = FitResult(raw, -1.0, 0, 0, False)
    p = plan.plan
    scales = [sample_scale(p.policy.scale, s.um_per_pixel, p.um_per_pixel) for s in plan.train]
    batches = iter(_pipeline(plan.train, scales, config, len(plan.classes)))
    started, startup_s = time.monotonic(), 0.0
    try:
        epoch = 0
        while epoch < control.epochs:
            epoch += 1
            sums: dict[str, float] = {}
            for _ in range(steps):
                step_started = time.monotonic()
                losses = {k: float(v) for k, v in step(*next(batches)).items()}
                startup_s = startup_s or time.monotonic() - step_started
                sums = {k: sums.get(k, 0.0) + v for k, v in losses.items()}
                reporter.step(losses["total"], epoch)
            means = {k: v / steps for k, v in sums.items()}
            before = control.epochs
            val = None
            if epoch in control.eval_at:
                eval_started = time.monotonic()
                val = _evaluate(inference, plan)
                if control.scored(epoch, val["map50"], time.monotonic() - eval_started):
                    result.best_map50, result.best_epoch = val["map50"], epoch
                    raw.save_weights(checkpoint)
                    reporter.best(epoch, val)
            control.timed(epoch, time.monotonic() - started, startup_s)
            _apply(control, schedule, reporter, epoch, before)
            result.history.append({"epoch": epoch, **means, **(val or {})})
            result.epochs_run = epoch
            reporter.epoch_done(epoch, means, val)
    except KeyboardInterrupt:
        result.interrupted = True
        reporter.set_state("interrupted", "stopped by Ctrl-C: writing the bundle from the best weights so far")
    result.notes = list(control.notes)
    result.time_cut = control.time_cut and result.epochs_run < control.planned
    if checkpoint.is_file():
        raw.load_weights(checkpoint)
    else:
        raw.save_weights(checkpoint)  # interrupted before the first evaluation: keep what we have
    return result
