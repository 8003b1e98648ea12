"""Benchmark: one model across magnifications (issue 26), scored through the device's own Detector.

(a) Two objectives in one package: synthetic fluorescent nuclei at zoom 1 (~13 px) and zoom 3.7
    (~48 px), frames carrying their µm per pixel. Trained with the default command's path
    (train_bundle, TrainConfig(epochs=N)), then scored per magnification on held-out frames of
    (new seeds, each objective alone) through device.inference.detector.Detector.analyse:
      before       the same frames with their calibration stripped from the package: the trainer
                   sees one scale (the old behaviour), the device is told no µm/px
      not told     the calibrated bundle, the device not given the frame's µm/px
      after        the calibrated bundle, the device given the frame's µm/px (it rescales)
(b) One objective: trained at zoom 1 (~26 px), run on held-out frames at 1x, 0.5x and 2x
    magnification, without and with the frame's µm/px.

Figures: mAP@0.5 (the device's detections down to score 0.001, ranked) and count MAE per image
at the bundle's own per-class thresholds, both from trainer.predict.evaluate_predictions. Small
frames and few epochs so the whole run fits ~12 minutes on 2 CPU cores: the absolute figures are
of a short training, the differences between rows are the point. Prints, does not assert.

    flock /tmp/scopehive-cpu.lock .venv/bin/python bench/train_magnifications.py \
        [--frames 64] [--held-out 16] [--size 256] [--epochs 8] [--no-before] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODE = "fluorescence"
MIXED: dict[str, object] = {"scale": 1.0, "zooms": "1,3.7"}  # nuclei ~13 px and ~48 px
SINGLE: dict[str, object] = {"scale": 1.9}  # nuclei ~26 px at zoom 1; 0.5x: ~13 px, 2x: ~52 px
RUN_AT = ("1", "0.5", "2")  # (b): magnifications the held-out frames are taken at
SCORE_FLOOR = 1e-3  # detector threshold for ranking (mAP); counts use the bundle's thresholds


@dataclass(frozen=True)
class Plan:
    frames: int
    held_out: int
    size: int
    epochs: int
    before: bool
    work: Path


def _images(plan: Plan, count: int, seed: int, scene: dict[str, object], calibrated: bool = True) -> Iterable[Any]:
    """Synthetic frames; `calibrated` False drops the µm per pixel (an uncalibrated capture)."""
    from device.datasets.package import synthetic_images

    for image in synthetic_images(count, seed, plan.size, plan.size, MODE, **scene):
        yield image if calibrated else replace(image, acquisition=None)


def _package(path: Path, images: Iterable[Any]) -> Path:
    from device.datasets.package import write_dataset_package
    from device.sources.synthetic_modes import mode_classes

    write_dataset_package(path, f"synthetic-{MODE}", mode_classes(MODE), images)
    return path


def _samples(path: Path) -> list[Any]:
    from trainer.dataset import load_dataset_package

    return load_dataset_package(path).samples


def _train(package: Path, out: Path, epochs: int) -> tuple[Path, float]:
    from trainer.config import TrainConfig
    from trainer.pipeline import train_bundle

    started = time.monotonic()
    train_bundle(package, out, TrainConfig(epochs=epochs), force=True, quiet=True)
    return out, time.monotonic() - started


def _describe(bundle: Path, seconds: float) -> None:
    from trainer.bundle import read_card

    card = read_card(bundle)
    training = card.metrics["training"]
    um = card.input.um_per_pixel
    print(f"  trained {seconds:.0f} s, {training['epochs_run']} epochs (best {training['best_epoch']}), "
          f"input {card.input.width}x{card.input.height}, scale {card.input.scale:.3f}, "
          f"trained µm/px {um if um is None else round(um, 4)}; validation mAP@0.5 {card.metrics['map50']:.3f}")
    for note in training["notes"]:
        print(f"  note: {note}")


def _object_px(samples: list[Any]) -> float:
    sizes = [np.sqrt(np.prod(b[2:] - b[:2])) for s in samples for b in s.boxes]
    return float(np.median(sizes)) if sizes else float("nan")


def _auto_runs(detector: Any, frames: list[np.ndarray]) -> list[Any]:
    """The frames as one uncalibrated stream through the device's Pipeline (the automatic
    per-frame scale, device/inference/autoscale.py): what a device with no calibration runs."""
    from device.pipeline import ModelSlot, Pipeline, PipelineOptions
    from device.sources.capture import Frame

    slot = ModelSlot(lambda _path: detector)
    slot.load(Path("."))
    pipeline = Pipeline(PipelineOptions(auto_scale=True), slot)
    return [pipeline.analyse(Frame(f, i, time.time(), time.perf_counter())) for i, f in enumerate(frames)]


def _device_score(bundle: Path, samples: list[Any], told: bool | str) -> dict[str, float]:
    """Each frame through Detector.analyse (with or without its µm/px), or (told="auto") the
    frames as one stream through the device's pipeline with the automatic scale; scored by
    evaluate_predictions."""
    import cv2

    from device.inference.detector import load_detector
    from trainer.bundle import read_card
    from trainer.metrics import Boxes
    from trainer.predict import evaluate_predictions, frame_max_detections

    card = read_card(bundle)
    detector = load_detector(bundle, "onnx", bundle / ".cache", threshold=SCORE_FLOOR)
    preds: list[Boxes] = []
    scales: list[float] = []
    frames = [s.raw if s.raw is not None else cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR) for s in samples]
    runs = (_auto_runs(detector, frames) if told == "auto"
            else [detector.analyse(f, s.um_per_pixel if told else None) for f, s in zip(frames, samples, strict=True)])
    for run in runs:
        d = run.detections
        preds.append(Boxes(d.xyxy.astype(np.float64), d.scores.astype(np.float64), d.class_ids.astype(int)))
        scale = run.fields.get("input_scale")  # what the tiled detector ran this frame at
        scales.append(float(scale) if isinstance(scale, int | float) else float(card.input.scale or 1.0))
    max_dets = frame_max_detections(card.input.resize_rule(), card.output.max_detections)
    figures: dict[str, Any] = evaluate_predictions(samples, preds, card.classes, max_dets, card.thresholds_by_class())
    return {"map50": float(figures["map50"]), "map50_95": float(figures["map50_95"]),
            "mae": float(figures["count_error"]["total_mae"]), "scale": float(np.mean(scales))}


def _row(label: str, samples: list[Any], bundle: Path, told: bool | str) -> None:
    r = _device_score(bundle, samples, told)
    print(f"  | {label} | {len(samples)} | {_object_px(samples):.0f} | {r['scale']:.3f} | {r['map50']:.3f} | {r['mae']:.2f} |")


HEADER = "  | run | frames | object px | input scale | mAP@0.5 | count MAE |\n  | --- | --- | --- | --- | --- | --- |"


def part_a(plan: Plan) -> None:
    print(f"\n(a) two magnifications in one package ({MIXED['zooms']}), {plan.frames} training frames")
    calibrated = _package(plan.work / "a-train.zip", _images(plan, plan.frames, 1, MIXED))
    bundle, seconds = _train(calibrated, plan.work / "a-calibrated", plan.epochs)
    _describe(bundle, seconds)
    before = None
    if plan.before:
        print("  the same frames without µm per pixel (one scale, as before issue 26):")
        plain = _package(plan.work / "a-plain.zip", _images(plan, plan.frames, 1, MIXED, calibrated=False))
        before, seconds = _train(plain, plan.work / "a-plain", plan.epochs)
        _describe(before, seconds)
    print(HEADER)
    for i, zoom in enumerate(str(MIXED["zooms"]).split(",")):  # held-out frames of each objective, new seeds
        group = _samples(_package(plan.work / f"a-held-{zoom}.zip", _images(plan, plan.held_out, 10 + i, {**MIXED, "zooms": zoom})))
        um = group[0].um_per_pixel
        if before is not None:
            _row(f"zoom {zoom}, before (trained and run uncalibrated)", group, before, told=False)
        _row(f"zoom {zoom}, calibrated bundle, device not told µm/px", group, bundle, told=False)
        _row(f"zoom {zoom}, calibrated bundle, not told, automatic scale", group, bundle, told="auto")
        _row(f"zoom {zoom}, after (device told {um:.3f} µm/px)", group, bundle, told=True)


def part_b(plan: Plan) -> None:
    print(f"\n(b) trained at one magnification, run at {', '.join(z + 'x' for z in RUN_AT)}; {plan.frames} training frames")
    package = _package(plan.work / "b-train.zip", _images(plan, plan.frames, 3, {**SINGLE, "zooms": "1"}))
    bundle, seconds = _train(package, plan.work / "b-single", plan.epochs)
    _describe(bundle, seconds)
    print(HEADER)
    for i, zoom in enumerate(RUN_AT):
        held = _samples(_package(plan.work / f"b-held-{zoom}.zip", _images(plan, plan.held_out, 4 + i, {**SINGLE, "zooms": zoom})))
        _row(f"{zoom}x, without scale", held, bundle, told=False)
        _row(f"{zoom}x, automatic scale (no calibration)", held, bundle, told="auto")
        _row(f"{zoom}x, with calibration-driven scale", held, bundle, told=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64, help="training frames per package")
    parser.add_argument("--held-out", type=int, default=16, help="held-out frames per magnification")
    parser.add_argument("--size", type=int, default=256, help="square frame side in pixels")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--no-before", action="store_true", help="(a): skip the uncalibrated training")
    parser.add_argument("--parts", default="a,b")
    parser.add_argument("--out", type=Path, default=None, help="keep packages and bundles here (default: a temp dir)")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="scopehive-bench-mag-"))
    work.mkdir(parents=True, exist_ok=True)
    plan = Plan(args.frames, args.held_out, args.size, args.epochs, not args.no_before, work)
    trainings = ("a" in args.parts) * (1 + plan.before) + ("b" in args.parts)
    print(f"plan: {MODE} frames {plan.size}x{plan.size}, {plan.frames} training frames per package, "
          f"{plan.held_out} held-out frames per magnification, {trainings} trainings of {plan.epochs} epochs "
          f"(TrainConfig(epochs={plan.epochs}), otherwise the defaults); work dir {work}")
    print(f"cpu cores visible: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    started = time.monotonic()
    if "a" in args.parts:
        part_a(plan)
    if "b" in args.parts:
        part_b(plan)
    print(f"\ntotal {(time.monotonic() - started) / 60:.1f} min; load average now "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} (1, 5, 15 min)")


if __name__ == "__main__":
    main()
