"""From a dataset package to a verified bundle: validate, train, evaluate, export, check, write.

Reads like the data flow on purpose. The package is validated before anything is created, so a
bad package leaves no trace; the bundle files are assembled aside and moved in at the end.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from device.inference.pixels import TRAINED
from trainer.accelerator import training_on_gpu
from trainer.augment import PIXEL_MEAN, PIXEL_SCALE
from trainer.baseline import baseline_of, sample_um_per_pixel
from trainer.bundle import (
    COUNT_MODELS_FORMAT,
    MODEL_FORMAT_VERSION,
    InputSpec,
    ModelCard,
    Normalization,
    OutputSpec,
    PixelSpec,
    write_bundle,
)
from trainer.config import TrainConfig
from trainer.counts import keep_above, threshold_vector
from trainer.crossval import choose_folds, cross_validate
from trainer.dataset import Dataset, Sample, load_dataset_package, with_pixels
from trainer.errors import OutputDirError
from trainer.export import compare_with_keras, export_onnx
from trainer.metrics import Boxes
from trainer.model import ModelSpec, build_inference_model, build_raw_model
from trainer.plan import TrainingPlan, describe, make_plan, validation_warnings
from trainer.predict import (
    Resize,
    evaluate_predictions,
    first_tiles,
    frame_max_detections,
    keras_runner,
    predict,
)
from trainer.progress import ProgressReporter
from trainer.report import render_markdown, render_png
from trainer.split import group_split
from trainer.tiling import TilePolicy
from trainer.train import FitPlan, FitResult, fit
from trainer.warmstart import source_files

WORK_DIR = "train"  # inside --out: checkpoint and the spec `export` needs to rebuild the model
_PARITY_FRAMES = 4
_FINISH_RESERVE_S = 90.0  # final evaluation, ONNX export and parity check, report, on 2 cores


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"{out} is a file: give a folder for --out")
    if out.is_dir() and any(p.name != "progress.json" for p in out.iterdir()) and not force:
        raise OutputDirError(f"{out} already holds files: choose a new --out, or pass --force to replace the bundle")
    out.mkdir(parents=True, exist_ok=True)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "model"


def save_spec(work: Path, spec: ModelSpec, policy: TilePolicy, config: TrainConfig) -> None:
    payload = {"model": asdict(spec), "input_hw": list(policy.input_hw), "config": config.model_dump(),
               "policy": {**asdict(policy), "input_hw": list(policy.input_hw)}}
    (work / "spec.json").write_text(json.dumps(payload, indent=1))


def make_card(dataset: Dataset, config: TrainConfig, plan: TrainingPlan, metrics: dict[str, Any]) -> ModelCard:
    now = datetime.now(timezone.utc)
    p = plan.policy
    return ModelCard(
        name=config.name or _slug(dataset.project),
        version=config.version or now.strftime("%Y.%m.%d-%H%M%S"),
        classes=dataset.classes,
        input=InputSpec(width=p.input_hw[1], height=p.input_hw[0], layout="NHWC", color="RGB", resize="tile", name="image",
                        scale=p.scale, tile_overlap=p.overlap, max_tiles=p.max_tiles, pixels=PixelSpec.of(config.pixel_rule()),
                        um_per_pixel=plan.um_per_pixel),
        normalization=Normalization(scale=PIXEL_SCALE, mean=(PIXEL_MEAN,) * 3, std=(1.0, 1.0, 1.0)),
        output=OutputSpec(format="scopehive-v1", max_detections=plan.max_detections, nms_iou=0.5),
        score_threshold=float(np.clip(metrics["score_threshold"], 0.0, 1.0)),
        class_thresholds=metrics["class_thresholds"],
        count_models=metrics.get("count_models"),
        format_version=COUNT_MODELS_FORMAT if metrics.get("count_models") else MODEL_FORMAT_VERSION,
        metrics=metrics,
        dataset_sha256=dataset.sha256,
        created=now,
    )


def parity_frames(samples: list[Sample], resize: Resize) -> np.ndarray:
    return first_tiles(samples[:_PARITY_FRAMES], resize)


def validation_baseline(val: list[Sample], preds: list[Boxes], classes: list[str], metrics: dict[str, Any]) -> dict[str, Any]:
    """What the model kept on its validation frames at the fitted thresholds: the device compares its live stream with it."""
    kept = keep_above(preds, threshold_vector(classes, metrics["class_thresholds"], metrics["score_threshold"]))
    return baseline_of(kept, classes, "validation", f"{len(val)} validation frames of training", sample_um_per_pixel(val))


def _finish(out: Path, dataset: Dataset, val: list[Sample], fitted: FitResult, config: TrainConfig,
            plan: TrainingPlan, reporter: ProgressReporter, cross_validation: dict[str, Any] | None = None) -> dict[str, Any]:
    reporter.set_state("evaluating", "scoring the best weights on the validation split")
    policy = plan.policy
    model = build_inference_model(fitted.raw, policy.input_hw, plan.max_detections)
    preds = predict(keras_runner(model), val, policy, trained_um=plan.um_per_pixel)
    metrics: dict[str, Any] = evaluate_predictions(val, preds, dataset.classes, frame_max_detections(policy, plan.max_detections))
    metrics["baseline"] = validation_baseline(val, preds, dataset.classes, metrics)  # the device's drift alarms (docs/drift.md)
    if cross_validation is not None:
        metrics["cross_validation"] = cross_validation
    reporter.set_state("exporting", "exporting to ONNX and checking it against Keras")
    onnx_model = export_onnx(model)
    metrics["onnx_parity"] = compare_with_keras(onnx_model, model, parity_frames(val, policy))
    metrics["training"] = {
        "epochs_run": fitted.epochs_run, "epochs": plan.epochs, "best_epoch": fitted.best_epoch,
        "interrupted": fitted.interrupted, "seconds": round(time.monotonic() - reporter.started, 1),
        "train_images": len(dataset.samples) - len(val), "seed": config.seed,
        "plan": plan.as_dict(), "notes": fitted.notes, "time_cut": fitted.time_cut,
        "device": "gpu" if plan.gpu else "cpu",
    }
    card = make_card(dataset, config, plan, metrics)
    extras = {
        "report.md": render_markdown(card.name, card.version, metrics).encode(),
        "report.png": render_png(val, preds, dataset.classes, card.class_thresholds or {}),
        **source_files(out / WORK_DIR / "best.weights.h5", ModelSpec(len(dataset.classes), config.width_multiplier), dataset.classes),
    }
    write_bundle(out, card, onnx_model, extras)
    return metrics


def weights_label(training: dict[str, Any]) -> str:
    """Which weights a figure is of: the kept epoch, and how it was chosen."""
    best = training.get("best_epoch") or 0
    if best:
        return f"epoch {best} of {training.get('epochs_run')} (best on this validation split, which chose it: optimistic)"
    return f"epoch {training.get('epochs_run')} (last; never scored during training)"


def final_figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """progress.json `final`: the report's figures, saying which set and which weights."""
    training = metrics.get("training") or {}
    return {"set": "validation", "weights": weights_label(training), "map50": metrics["map50"], "map50_95": metrics["map50_95"],
            "images": metrics["val_images"], "objects": metrics["val_objects"]}


def train_bundle(package: str | Path, out: str | Path, config: TrainConfig, force: bool = False, quiet: bool = False) -> Path:
    """The `train` command: returns the bundle folder (== out)."""
    started = time.monotonic()
    return train_dataset(load_dataset_package(package), out, config, force, quiet, started)


def time_limit_s(config: TrainConfig, started: float, now: float) -> float | None:
    """Seconds the training loop may take so the whole run, from `started` (the command's start:
    reading the package and loading TensorFlow count too), ends within --time-limit-min."""
    if config.epochs or not config.time_limit_min:
        return None
    return max(60.0, config.time_limit_min * 60 - (now - started) - _FINISH_RESERVE_S)


def train_dataset(dataset: Dataset, out: str | Path, config: TrainConfig, force: bool = False, quiet: bool = False,
                  started: float | None = None) -> Path:
    """Train on an already validated dataset and write the bundle into `out`.

    `started` (time.monotonic()) is when the user's command began; the time limit counts from it.
    """
    started = time.monotonic() if started is None else started
    out = Path(out)
    _prepare_out(out, force)
    if config.pixel_rule() != TRAINED:  # the package was decoded with the default rule: convert again
        dataset = replace(dataset, samples=with_pixels(dataset.samples, config.pixel_rule()))
    split = group_split(dataset.samples, config.val_fraction, config.seed)
    train, val = split.train, split.val
    plan = make_plan(train, val, dataset.classes, config, gpu=training_on_gpu())
    plan.warnings += validation_warnings(split)
    plan.validation = {"images": len(val), "groups": split.groups, "val_groups": split.val_groups, "closest": split.closest}
    work = out / WORK_DIR
    work.mkdir(exist_ok=True)
    spec = ModelSpec(len(dataset.classes), config.width_multiplier, weights=config.backbone_weights())
    save_spec(work, spec, plan.policy, config.model_copy(update={"max_detections": plan.max_detections}))
    reporter = ProgressReporter(out, plan.epochs, plan.steps_per_epoch, quiet)
    reporter.note(describe(plan))
    try:
        limit = time_limit_s(config, started, time.monotonic())
        fit_started = time.monotonic()
        fitted = fit(FitPlan(train, val, dataset.classes, plan, work, limit), config, reporter)
        cv = _cross_validation(dataset, plan, config, work, reporter, time.monotonic() - fit_started,
                               time_limit_s(config, started, time.monotonic()) if limit is not None else None)
        metrics = _finish(out, dataset, val, fitted, config, plan, reporter, cv)
        reporter.set_state("done", f"bundle written to {out}", bundle=str(out), final=final_figures(metrics))
    except BaseException as exc:
        reporter.set_state("failed", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        reporter.close()
    return out


def _cross_validation(dataset: Dataset, plan: TrainingPlan, config: TrainConfig, work: Path, reporter: ProgressReporter,
                      fit_seconds: float, seconds_left: float | None) -> dict[str, Any]:
    """Folds of whole acquisitions for small packages, when asked or when time allows (trainer/crossval.py)."""
    choice = choose_folds(config, len(dataset.samples), fit_seconds, seconds_left)
    reporter.note(choice.reason)
    if not choice.folds:
        return {"folds": 0, "note": choice.reason}
    return cross_validate(dataset.samples, dataset.classes, plan, config, work, choice, reporter, seconds_left)


def rebuild_inference_model(bundle: Path):  # type: ignore[no-untyped-def]
    """The Keras model of an existing bundle, from its train/spec.json and checkpoint, and its resize rule."""
    spec_path, weights = bundle / WORK_DIR / "spec.json", bundle / WORK_DIR / "best.weights.h5"
    if not spec_path.is_file() or not weights.is_file():
        raise OutputDirError(f"{bundle}: {WORK_DIR}/spec.json or {WORK_DIR}/best.weights.h5 is missing: "
                             "export needs the training folder the trainer wrote; retrain or copy it back")
    payload = json.loads(spec_path.read_text())
    spec = ModelSpec(**{**payload["model"], "weights": None})
    raw = build_raw_model(spec)
    raw.load_weights(weights)
    hw = (int(payload["input_hw"][0]), int(payload["input_hw"][1]))
    resize: Resize = hw  # spec.json of a bundle from before tiling: frames were stretched
    if "policy" in payload:
        p = payload["policy"]
        resize = TilePolicy(float(p["scale"]), hw, int(p["overlap"]), int(p["max_tiles"]))
    return build_inference_model(raw, hw, int(payload["config"]["max_detections"]) or 100), resize, payload
