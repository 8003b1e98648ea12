"""Cross-validation for small packages (issue 26 item 6: validation you can believe).

With a few dozen frames, one validation split is a handful of fields and its mAP moves by 0.1
from one frame to the next (45 phase-contrast frames: validation 0.81, held-out 0.54). After the
one model is trained, `k` more trainings of the same plan each hold out one fold of whole groups
(acquisitions and near-copies never straddle folds, trainer/split.py) and are scored on it. Every
image is then scored once by a model that never saw its acquisition: the mean of the folds and
their spread is a figure to quote beside the one split's. The bundle stays the one model; the
folds' models are thrown away.

Auto (`folds` -1): 3 folds for packages of at most `AUTO_MAX_IMAGES` images, when the time limit
leaves room for them (each fold is estimated to take as long as the main training) and there are
at least 3 groups; otherwise it says why it did not run.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.config import TrainConfig
from trainer.dataset import Sample
from trainer.model import build_inference_model
from trainer.plan import TrainingPlan
from trainer.predict import evaluate_predictions, frame_max_detections, keras_runner, predict
from trainer.progress import ProgressReporter
from trainer.split import group_folds
from trainer.train import FitPlan, fit

AUTO_FOLDS = 3
AUTO_MAX_IMAGES = 80


@dataclass(frozen=True)
class FoldChoice:
    folds: int  # 0: not run
    reason: str  # why not, or how many and why


def choose_folds(config: TrainConfig, images: int, fit_seconds: float, seconds_left: float | None) -> FoldChoice:
    """How many folds to train: the user's number, or the auto rule (see the module docstring)."""
    if config.folds == 0:
        return FoldChoice(0, "cross-validation off (--folds 0)")
    if config.folds >= 2:
        return FoldChoice(config.folds, f"{config.folds} folds (--folds)")
    if images > AUTO_MAX_IMAGES:
        return FoldChoice(0, f"{images} images: one validation split is enough (cross-validation runs for at most "
                             f"{AUTO_MAX_IMAGES})")
    if seconds_left is None:
        return FoldChoice(0, "cross-validation not run: a fixed --epochs sets no time limit to fit it in; --folds 3 runs it")
    need = AUTO_FOLDS * fit_seconds
    if need > seconds_left:
        return FoldChoice(0, f"cross-validation not run: {AUTO_FOLDS} folds would take ~{need / 60:.0f} min and the time "
                             f"limit leaves {max(0.0, seconds_left) / 60:.0f}; --folds {AUTO_FOLDS} (or a larger "
                             "--time-limit-min) runs it")
    return FoldChoice(AUTO_FOLDS, f"{AUTO_FOLDS} folds: {images} images are few for one validation split")


def _score(fitted_raw: Any, val: list[Sample], classes: list[str], plan: TrainingPlan) -> dict[str, Any]:
    model = build_inference_model(fitted_raw, plan.policy.input_hw, plan.max_detections)
    preds = predict(keras_runner(model), val, plan.policy, trained_um=plan.um_per_pixel)
    return evaluate_predictions(val, preds, classes, frame_max_detections(plan.policy, plan.max_detections))


def cross_validate(samples: list[Sample], classes: list[str], plan: TrainingPlan, config: TrainConfig, work: Path,
                   choice: FoldChoice, reporter: ProgressReporter, limit_s: float | None = None) -> dict[str, Any]:
    """Train and score `choice.folds` folds; metrics["cross_validation"] of the bundle."""
    folds = group_folds(samples, choice.folds, config.seed)
    if not folds:
        return {"folds": 0, "note": f"cross-validation not run: the images fall into fewer than {choice.folds} independent "
                                    "groups (acquisitions or near-copies), so no fold would be independent"}
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    for i, held in enumerate(folds, 1):
        reporter.set_state("cross-validating", f"fold {i} of {len(folds)}: training on the others, scoring on its {len(held)} images")
        held_set = set(held)
        val = [samples[j] for j in held]
        train = [s for j, s in enumerate(samples) if j not in held_set]
        fold_dir = work / f"fold-{i}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        quiet = ProgressReporter(fold_dir, plan.epochs, plan.steps_per_epoch, quiet=True)
        each = None if limit_s is None else max(30.0, (limit_s - (time.monotonic() - started)) / (len(folds) - i + 1))
        try:
            fitted = fit(FitPlan(train, val, classes, plan, fold_dir, each), config, quiet)
        finally:
            quiet.close()
        m = _score(fitted.raw, val, classes, plan)
        shutil.rmtree(fold_dir, ignore_errors=True)  # the folds' models are figures only
        rows.append({"fold": i, "images": len(val), "objects": int(m["val_objects"]), "map50": float(m["map50"]),
                     "map50_95": float(m["map50_95"]), "count_mae": float(m["count_error"]["total_mae"]),
                     "epochs_run": fitted.epochs_run})
    maps = np.array([r["map50"] for r in rows])
    weights = np.array([r["images"] for r in rows], np.float64)
    return {"folds": len(rows), "note": choice.reason, "per_fold": rows,
            "map50_mean": float(np.average(maps, weights=weights)), "map50_sd": float(maps.std(ddof=1)) if len(rows) > 1 else 0.0,
            "map50_95_mean": float(np.average([r["map50_95"] for r in rows], weights=weights)),
            "count_mae_mean": float(np.average([r["count_mae"] for r in rows], weights=weights)),
            "seconds": round(time.monotonic() - started, 1)}
