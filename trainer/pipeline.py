"""From a dataset package to a verified bundle: validate, train, evaluate, export, check, write.

Reads like the data flow on purpose. The package is validated before anything is created, so a
bad package leaves no trace; the bundle files are assembled aside and moved in at the end.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from trainer.augment import PIXEL_MEAN, PIXEL_SCALE
from trainer.bundle import InputSpec, ModelCard, Normalization, OutputSpec, write_bundle
from trainer.config import TrainConfig, input_hw, resolve_epochs
from trainer.dataset import Dataset, Sample, load_dataset_package, split_dataset
from trainer.errors import OutputDirError
from trainer.export import compare_with_keras, export_onnx
from trainer.model import ModelSpec, build_inference_model, build_raw_model
from trainer.predict import evaluate_predictions, keras_runner, predict, prepare_input
from trainer.progress import ProgressReporter
from trainer.report import render_markdown, render_png
from trainer.train import FitPlan, FitResult, fit

WORK_DIR = "train"  # inside --out: checkpoint and the spec `export` needs to rebuild the model
_PARITY_FRAMES = 4
_MIN_STEPS = 16


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"{out} is a file: give a folder for --out")
    if out.is_dir() and any(p.name != "progress.json" for p in out.iterdir()) and not force:
        raise OutputDirError(f"{out} already holds files: choose a new --out, or pass --force to replace the bundle")
    out.mkdir(parents=True, exist_ok=True)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "model"


def save_spec(work: Path, spec: ModelSpec, hw: tuple[int, int], config: TrainConfig) -> None:
    payload = {"model": asdict(spec), "input_hw": list(hw), "config": config.model_dump()}
    (work / "spec.json").write_text(json.dumps(payload, indent=1))


def make_card(dataset: Dataset, config: TrainConfig, hw: tuple[int, int], metrics: dict[str, Any]) -> ModelCard:
    now = datetime.now(timezone.utc)
    return ModelCard(
        name=config.name or _slug(dataset.project),
        version=config.version or now.strftime("%Y.%m.%d-%H%M%S"),
        classes=dataset.classes,
        input=InputSpec(width=hw[1], height=hw[0], layout="NHWC", color="RGB", resize="stretch", name="image"),
        normalization=Normalization(scale=PIXEL_SCALE, mean=(PIXEL_MEAN,) * 3, std=(1.0, 1.0, 1.0)),
        output=OutputSpec(format="scopehive-v1", max_detections=config.max_detections, nms_iou=0.5),
        score_threshold=float(np.clip(metrics["score_threshold"], 0.0, 1.0)),
        class_thresholds=metrics["class_thresholds"],
        metrics=metrics,
        dataset_sha256=dataset.sha256,
        created=now,
    )


def box_sizes(samples: list[Sample]) -> np.ndarray:
    """sqrt(width * height) of every box, in image pixels (what the automatic input size reads)."""
    boxes = [s.boxes.reshape(-1, 4) for s in samples]
    xyxy = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
    return np.sqrt(np.clip(xyxy[:, 2] - xyxy[:, 0], 0, None) * np.clip(xyxy[:, 3] - xyxy[:, 1], 0, None))


def steps_per_epoch(n_train: int, hw: tuple[int, int], config: TrainConfig) -> int:
    """Enough crops to cover every training pixel once, and never fewer than 16 steps.

    A few dozen large frames would otherwise make an epoch a handful of steps and the default
    epoch count far too little training.
    """
    crops_per_image = math.ceil(hw[0] * hw[1] / config.crop**2)
    return max(_MIN_STEPS, math.ceil(n_train * crops_per_image / config.batch_size))


def parity_frames(samples: list[Sample], hw: tuple[int, int]) -> np.ndarray:
    return np.stack([prepare_input(s.image, hw) for s in samples[:_PARITY_FRAMES]])


def _finish(out: Path, dataset: Dataset, val: list[Sample], fitted: FitResult, config: TrainConfig,
            hw: tuple[int, int], reporter: ProgressReporter) -> Path:
    reporter.set_state("evaluating", "scoring the best weights on the validation split")
    model = build_inference_model(fitted.raw, hw, config.max_detections)
    preds = predict(keras_runner(model), val, hw)
    metrics: dict[str, Any] = evaluate_predictions(val, preds, dataset.classes, config.max_detections)
    reporter.set_state("exporting", "exporting to ONNX and checking it against Keras")
    onnx_model = export_onnx(model)
    metrics["onnx_parity"] = compare_with_keras(onnx_model, model, parity_frames(val, hw))
    metrics["training"] = {
        "epochs_run": fitted.epochs_run, "epochs": config.epochs, "best_epoch": fitted.best_epoch,
        "interrupted": fitted.interrupted, "seconds": round(time.monotonic() - reporter.started, 1),
        "train_images": len(dataset.samples) - len(val), "seed": config.seed,
    }
    card = make_card(dataset, config, hw, metrics)
    extras = {
        "report.md": render_markdown(card.name, card.version, metrics).encode(),
        "report.png": render_png(val, preds, dataset.classes, card.class_thresholds or {}),
    }
    write_bundle(out, card, onnx_model, extras)
    return out


def train_bundle(package: str | Path, out: str | Path, config: TrainConfig, force: bool = False, quiet: bool = False) -> Path:
    """The `train` command: returns the bundle folder (== out)."""
    return train_dataset(load_dataset_package(package), out, config, force, quiet)


def train_dataset(dataset: Dataset, out: str | Path, config: TrainConfig, force: bool = False, quiet: bool = False) -> Path:
    """Train on an already validated dataset and write the bundle into `out`."""
    out = Path(out)
    _prepare_out(out, force)
    train, val = split_dataset(dataset.samples, config.val_fraction, config.seed)
    hw = input_hw(config, dataset.samples[0].image.shape[:2], box_sizes(train))
    work = out / WORK_DIR
    work.mkdir(exist_ok=True)
    steps = steps_per_epoch(len(train), hw, config)
    config = resolve_epochs(config, steps)
    save_spec(work, ModelSpec(len(dataset.classes), config.width_multiplier, weights=config.backbone_weights()), hw, config)
    reporter = ProgressReporter(out, config.epochs, steps, quiet)
    try:
        fitted = fit(FitPlan(train, val, dataset.classes, hw, work), config, reporter)
        _finish(out, dataset, val, fitted, config, hw, reporter)
        reporter.set_state("done", f"bundle written to {out}", bundle=str(out))
    except BaseException as exc:
        reporter.set_state("failed", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        reporter.close()
    return out


def rebuild_inference_model(bundle: Path):  # type: ignore[no-untyped-def]
    """The Keras model of an existing bundle, from its train/spec.json and checkpoint."""
    spec_path, weights = bundle / WORK_DIR / "spec.json", bundle / WORK_DIR / "best.weights.h5"
    if not spec_path.is_file() or not weights.is_file():
        raise OutputDirError(f"{bundle}: {WORK_DIR}/spec.json or {WORK_DIR}/best.weights.h5 is missing: "
                             "export needs the training folder the trainer wrote; retrain or copy it back")
    payload = json.loads(spec_path.read_text())
    spec = ModelSpec(**{**payload["model"], "weights": None})
    raw = build_raw_model(spec)
    raw.load_weights(weights)
    hw = (int(payload["input_hw"][0]), int(payload["input_hw"][1]))
    return build_inference_model(raw, hw, int(payload["config"]["max_detections"])), hw, payload
