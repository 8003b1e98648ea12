"""Score a bundle's exported model on labelled frames exactly as the device runs it.

One path for `trainer evaluate` and every benchmark: ONNX Runtime (no TensorFlow), the card's
resize rule (tiles for `resize: tile` bundles, stretch for older ones) and, unless re-fitting is
asked for, the bundle's own per-class thresholds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.bundle import read_card
from trainer.dataset import Sample


def score_bundle(bundle: Path, samples: list[Sample], refit_thresholds: bool = False) -> dict[str, Any]:
    """evaluate_predictions' figures for `samples`, predicted by the bundle's model.onnx."""
    from trainer.export import onnx_runner
    from trainer.predict import evaluate_predictions, frame_max_detections, predict

    card = read_card(bundle)
    runner = onnx_runner((bundle / "model.onnx").read_bytes())
    rule = card.input.resize_rule()
    preds = predict(runner, samples, rule)
    thresholds = None if refit_thresholds else card.thresholds_by_class()
    return evaluate_predictions(samples, preds, card.classes, frame_max_detections(rule, card.output.max_detections), thresholds)
