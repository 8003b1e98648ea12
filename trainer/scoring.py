"""Score a bundle's exported model on labelled frames exactly as the device runs it.

One path for `trainer evaluate`, the trainer service's held-out comparison and every benchmark:
ONNX Runtime (no TensorFlow), the card's pixel rule for frames over 8 bits, its resize rule (tiles for `resize: tile` bundles, stretch
for older ones) and, unless re-fitting is asked for, the bundle's own per-class thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.bundle import read_card
from trainer.dataset import Sample
from trainer.metrics import Boxes


@dataclass
class Scored:
    """The figures, and the detections each frame kept at the thresholds used (what the device counts)."""

    figures: dict[str, Any]
    kept: list[Boxes]


def score_bundle_kept(bundle: Path, samples: list[Sample], refit_thresholds: bool = False,
                      model_file: str = "model.onnx") -> Scored:
    """evaluate_predictions' figures for `samples`, predicted by the bundle's model.onnx (or
    `model_file`, its INT8 copy), with `image_counts`: per class, the (true, found) count of every
    image at the thresholds used (what a Bland-Altman plot of counts draws)."""
    from trainer.counts import count_pairs, keep_above, threshold_vector
    from trainer.dataset import with_pixels
    from trainer.export import onnx_runner
    from trainer.predict import evaluate_predictions, frame_max_detections, predict, truth_of

    card = read_card(bundle)
    samples = with_pixels(samples, card.input.pixel_rule())  # frames over 8 bits as this bundle's device sees them
    runner = onnx_runner((bundle / model_file).read_bytes())
    rule = card.input.resize_rule()
    preds = predict(runner, samples, rule, trained_um=card.input.um_per_pixel)
    thresholds = None if refit_thresholds else card.thresholds_by_class()
    models = None if refit_thresholds else card.count_models
    result = evaluate_predictions(samples, preds, card.classes, frame_max_detections(rule, card.output.max_detections), thresholds,
                                  models)
    used: dict[str, float] = result["class_thresholds"]  # type: ignore[assignment]
    kept = keep_above(preds, threshold_vector(card.classes, used, card.score_threshold))
    truth = truth_of(samples)
    result["image_counts"] = {
        name: [[int(t), int(f)] for t, f in zip(*count_pairs(truth, kept, c), strict=True)] for c, name in enumerate(card.classes)
    }
    return Scored(result, kept)


def score_bundle(bundle: Path, samples: list[Sample], refit_thresholds: bool = False, counts: bool = False) -> dict[str, Any]:
    """The figures alone; with `counts`, `image_counts` too (see score_bundle_kept)."""
    figures = score_bundle_kept(bundle, samples, refit_thresholds).figures
    if not counts:
        figures.pop("image_counts", None)
    return figures
