"""Benchmark: a bundle scored on a held-out package through the device's own Detector (what a box
runs: pixel rule, fit, normalise, ONNX Runtime, decode, per-class thresholds), beside the figure the
trainer recorded, and with the resize rule the device used before 2026-12-03 (OpenCV's area mode
for enlarging too) for comparison.

    .venv/bin/python bench/device_heldout.py [--bundle device/models/demo] [--package var/demo-model/held_out.zip]

Without --package it writes the demo bundle's held-out set (the Makefile's seed 909, 60 frames of
640x480) to var/bench/heldout/. Prints mAP@0.5 and the per-image count MAE of each rule.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from device.datasets.package import write_synthetic_package  # noqa: E402
from device.inference import preprocess  # noqa: E402
from device.inference.decode import keep_class_thresholds  # noqa: E402
from device.inference.detector import Detector, load_detector  # noqa: E402
from trainer.dataset import load_dataset_package  # noqa: E402
from trainer.metrics import Boxes, coco_map  # noqa: E402
from trainer.predict import truth_of  # noqa: E402

LOW_SCORE = 0.01  # mAP needs the whole ranking, as the trainer's scoring has it


def area_always(src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> int:
    return cv2.INTER_AREA  # the device's rule before 2026-12-03


def scored(detector: Detector, package: Path, rule: Callable[[tuple[int, int], tuple[int, int]], int]) -> dict[str, float]:
    """One pass a frame at LOW_SCORE (the ranking mAP needs); the count keeps each class's boxes
    at the card's own thresholds, as the device does."""
    dataset = load_dataset_package(package)
    thresholds = np.asarray(detector.card.thresholds(), np.float32)
    shared = preprocess.interpolation
    preprocess.interpolation = rule  # type: ignore[assignment]
    try:
        start = time.perf_counter()
        preds, counts = [], []
        for sample in dataset.samples:
            found = detector.detect(cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR))
            preds.append(Boxes(found.xyxy.astype(float), found.scores.astype(float), found.class_ids.astype(int)))
            counts.append(len(keep_class_thresholds(found, thresholds)))
        seconds = time.perf_counter() - start
    finally:
        preprocess.interpolation = shared
    truth = truth_of(dataset.samples)
    figures = coco_map(truth, preds, dataset.classes, max_dets=detector.card.output.max_detections)
    mae = sum(abs(c - len(t.classes)) for c, t in zip(counts, truth, strict=True)) / len(truth)
    return {"map50": float(figures["map50"]), "count_mae": mae, "images": len(truth), "seconds": seconds}  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "device" / "models" / "demo")
    parser.add_argument("--package", type=Path, default=None)
    args = parser.parse_args()
    package = args.package
    if package is None:
        package = ROOT / "var" / "bench" / "heldout" / "held_out.zip"
        if not package.is_file():
            package.parent.mkdir(parents=True, exist_ok=True)
            write_synthetic_package(str(package), 60, seed=909, width=640, height=480)
    detector = load_detector(args.bundle, "onnx", Path(tempfile.mkdtemp()), threshold=LOW_SCORE)
    card, runs = detector.card, detector.backend_name
    print(f"{card.name}:{card.version} on {package} (input {card.input.width}x{card.input.height}, {runs})")
    int8 = card.metrics.get("int8") or {}
    recorded = int8.get("int8", {}) if runs.endswith("/int8") else card.metrics.get("held_out", {})
    if recorded:
        print(f"  trainer's record ({'INT8' if runs.endswith('/int8') else 'float'}): mAP@0.5 {recorded.get('map50', float('nan')):.4f}"
              f"  count MAE {recorded.get('count_mae', float('nan')):.2f}")
    for name, rule in (("shared rule (now)", preprocess.interpolation), ("area always (before)", area_always)):
        f = scored(detector, package, rule)
        print(f"  device, {name:<22} mAP@0.5 {f['map50']:.4f}  count MAE {f['count_mae']:.2f}  "
              f"({f['images']} images, {f['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
