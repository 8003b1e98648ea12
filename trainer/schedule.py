"""How long a run trains: a learning-rate curve that can be shortened, early stopping, a time limit.

Why not stop cold when validation stalls: with a cosine schedule the last, low-rate steps are
where the weights settle, so a run that stalls mid-way is not stopped but finished quickly: the
rest of the cosine is squeezed into a short anneal (10 % of the planned steps), evaluated, and
the best checkpoint is kept. The same squeeze keeps a run on a slow or busy machine inside its
time limit: after every epoch the remaining epochs are cut to what the limit still allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import keras
import tensorflow as tf

_WARMUP_SHARE, _WARMUP_MAX = 20, 100  # warm-up: 1/20 of the steps, at most 100
_FLOOR = 0.02  # the cosine ends at 2 % of the peak rate
_PATIENCE = 3  # evaluations without improvement before the run is wound down
_MIN_DELTA = 0.003  # mAP@0.5 gains smaller than this are noise between evaluations
_ANNEAL_SHARE = 0.1
_EVALUATIONS = 15  # about this many over a run, none in its first third


class ShrinkableCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then cosine decay whose remaining part can be squeezed into fewer steps.

    progress(step) = p0 + (1 - p0) * (step - t0) / span; squeezing at step t sets p0 to the
    progress reached, t0 = t and span to the new remaining steps, so the rate never jumps.
    """

    def __init__(self, peak: float, total_steps: int) -> None:
        self.peak = float(peak)
        self.warmup = float(max(1, min(total_steps // _WARMUP_SHARE, _WARMUP_MAX)))
        self.p0 = tf.Variable(0.0, trainable=False, dtype=tf.float32)
        self.t0 = tf.Variable(self.warmup, trainable=False, dtype=tf.float32)
        self.span = tf.Variable(float(max(1.0, total_steps - self.warmup)), trainable=False, dtype=tf.float32)

    def progress(self, step: tf.Tensor | float) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        return tf.clip_by_value(self.p0 + (1.0 - self.p0) * (step - self.t0) / self.span, 0.0, 1.0)

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        warm = self.peak * (0.1 + 0.9 * step / self.warmup)
        cosine = self.peak * (_FLOOR + (1.0 - _FLOOR) * 0.5 * (1.0 + tf.cos(math.pi * self.progress(step))))
        return tf.where(step < self.warmup, warm, cosine)

    def squeeze(self, step: int, remaining_steps: int) -> None:
        """Finish the decay within `remaining_steps` from `step` on."""
        if step < self.warmup:
            return
        self.p0.assign(float(self.progress(step)))
        self.t0.assign(float(step))
        self.span.assign(float(max(1, remaining_steps)))

    def get_config(self) -> dict[str, float]:
        return {"peak": self.peak, "warmup": self.warmup}


def evaluation_epochs(epochs: int, eval_every: int, start: int = 0) -> set[int]:
    """Epochs after which to score the validation split: about 15 after the first third, and the last."""
    if eval_every:
        return {e for e in range(start + 1, epochs + 1) if e % eval_every == 0} | {epochs}
    every = max(1, math.ceil(epochs / _EVALUATIONS))
    return {e for e in range(max(start, epochs // 3) + 1, epochs + 1) if e % every == 0} | {epochs}


@dataclass
class RunControl:
    """Decides, epoch by epoch, how many epochs the run still has (pure Python, no TensorFlow).

    `limit_s` is the wall time the training loop may take (None: no limit, explicit --epochs);
    `early_stop` winds the run down once validation has not improved for 3 evaluations.
    """

    epochs: int
    steps_per_epoch: int
    eval_every: int = 0
    limit_s: float | None = None
    early_stop: bool = True
    eval_seconds: float = 0.0  # the latest evaluation: the first also traces the graph, later ones cost the same
    eval_total_s: float = 0.0  # all evaluations so far: not part of the training pace
    planned: int = 0  # the epochs first planned: a time cut may give epochs back, never more than these
    time_cut: bool = False
    best: float = -1.0
    stale: int = 0
    winding_down: bool = False
    notes: list[str] = field(default_factory=list)
    eval_at: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.eval_at = evaluation_epochs(self.epochs, self.eval_every)
        self.planned = self.planned or self.epochs

    def scored(self, epoch: int, map50: float, seconds: float) -> bool:
        """Record an evaluation; True if it is the best so far (checkpoint it)."""
        self.eval_seconds = seconds
        self.eval_total_s += seconds
        improved = map50 > self.best + _MIN_DELTA
        best = map50 > self.best
        self.best = max(self.best, map50)
        self.stale = 0 if improved else self.stale + 1
        if self.early_stop and not self.winding_down and self.stale >= _PATIENCE and epoch < self.epochs:
            wind = max(1, math.ceil(_ANNEAL_SHARE * self.epochs))
            if epoch + wind < self.epochs:
                self.notes.append(f"validation mAP@0.5 stopped improving at epoch {epoch} (best {self.best:.3f}): "
                                  f"finishing with a {wind}-epoch anneal instead of {self.epochs - epoch} more epochs")
                self._shorten(epoch, epoch + wind)
                self.winding_down = True
        return best

    def timed(self, epoch: int, elapsed_s: float, startup_s: float = 0.0) -> None:
        """After an epoch: fit the remaining epochs to the time limit.

        The pace is training time per epoch: `startup_s` (the first step, graph tracing: a minute
        on a busy machine) and the evaluations are left out of it. A run is cut when the limit
        would be passed; a run cut earlier gets epochs back (up to the plan) when the machine turns
        out faster than the first epochs said, unless validation has already stalled.
        """
        if self.limit_s is None or epoch >= self.epochs:
            return
        per_epoch = max(elapsed_s - startup_s - self.eval_total_s, 1e-6) / epoch
        evals_left = len([e for e in self.eval_at if e > epoch])
        projected = elapsed_s + (self.epochs - epoch) * per_epoch + evals_left * self.eval_seconds
        fits = self._epochs_that_fit(epoch, elapsed_s, per_epoch)
        if projected > self.limit_s and fits < self.epochs:
            self.notes.append(f"time limit: {self.epochs} epochs would take ~{projected / 60:.1f} min, "
                              f"training {fits} ({per_epoch:.1f} s per epoch on this machine)")
            self.time_cut = True
            self._shorten(epoch, fits)
        elif self.time_cut and not self.winding_down and fits > self.epochs + 1:  # +1: no churn over one epoch
            self.notes.append(f"time limit: faster than estimated ({per_epoch:.1f} s per epoch), training {fits} epochs")
            self._shorten(epoch, fits)

    def _epochs_that_fit(self, epoch: int, elapsed_s: float, per_epoch: float) -> int:
        """Most epochs (at least one more, at most the plan) whose training and evaluations end in time."""
        assert self.limit_s is not None
        for total in range(self.planned, epoch + 1, -1):
            evals = len([e for e in evaluation_epochs(total, self.eval_every, epoch) if e > epoch])
            if elapsed_s + (total - epoch) * per_epoch + evals * self.eval_seconds <= self.limit_s:
                return total
        return epoch + 1

    def _shorten(self, epoch: int, new_epochs: int) -> None:
        self.epochs = new_epochs
        later = evaluation_epochs(new_epochs, self.eval_every, epoch)
        self.eval_at = {e for e in self.eval_at if e <= epoch} | {e for e in later if e > epoch} | {new_epochs}
