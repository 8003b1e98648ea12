"""The bundle's drift baseline: the trainer writes what the device reads (trainer/baseline.py ->
device/drift/baseline.py), from the detections the model kept at its thresholds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from device.detections import Detections
from device.drift.baseline import VALIDATION, Baseline, build_baseline, card_baseline
from device.models.bundle import load_bundle
from trainer.baseline import baseline_of
from trainer.bundle import read_card
from trainer.metrics import Boxes

from .conftest import SMALL_SCENE
from .test_cli import run_trainer


def _frames(seed: int, n: int) -> list[Boxes]:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        k = int(rng.integers(0, 30))
        xy = rng.uniform(0, 500, (k, 2))
        frames.append(Boxes(np.concatenate([xy, xy + rng.uniform(4, 60, (k, 2))], 1), rng.uniform(0.3, 1, k), rng.integers(0, 3, k)))
    return frames


def test_trainer_and_device_compute_the_same_baseline() -> None:
    """Two codes, one format: the trainer's dict is what the device builds from the same boxes."""
    frames, classes = _frames(1, 40), ["cell", "crystal", "debris"]
    ums = [0.65 if i % 2 else None for i in range(len(frames))]
    written = baseline_of(frames, classes, VALIDATION, "40 validation frames of training", ums)
    device_side = build_baseline([Detections(f.xyxy, f.scores, f.classes) for f in frames], classes, VALIDATION,
                                 "40 validation frames of training", ums)
    parsed = Baseline.model_validate(json.loads(json.dumps(written)))  # through JSON, as in model.json
    ours, theirs = parsed.model_dump(), device_side.model_dump()
    for key in ("objects_per_frame", "class_mix", "objects_per_frame_by_class", "size_px", "size_um", "score"):
        for field, value in ours[key].items():  # the device holds boxes as float32: equal to 1e-5
            assert value == pytest.approx(theirs[key][field], rel=1e-5, abs=1e-5), (key, field)
    assert (ours["frames"], ours["objects"]) == (theirs["frames"], theirs["objects"])


def test_a_frame_without_objects_counts_as_zero_objects() -> None:
    empty = Boxes(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int))
    written = baseline_of([empty, *_frames(2, 1)], ["cell", "crystal", "debris"], VALIDATION, "")
    assert written["frames"] == 2 and written["objects_per_frame"]["mean"] == pytest.approx(written["objects"] / 2)


@pytest.mark.slow
def test_training_and_evaluate_record_write_a_baseline_the_device_reads(trained_bundle: Path, tmp_path: Path) -> None:
    from device.datasets.package import write_synthetic_package

    card = read_card(trained_bundle)
    baseline, why = card_baseline(card.metrics)
    assert baseline is not None, why
    assert baseline.source == "validation" and baseline.frames == card.metrics["val_images"]
    assert baseline.size_px is not None and baseline.score is not None
    assert min(baseline.score.cuts or [1.0]) >= min(card.thresholds_by_class().values()) - 1e-6  # kept boxes only
    load_bundle(trained_bundle)  # the device loads it (the baseline sits under metrics)

    bundle = tmp_path / "bundle"
    shutil.copytree(trained_bundle, bundle)
    held_out = tmp_path / "held.zip"
    write_synthetic_package(held_out, count=6, seed=321, **SMALL_SCENE)  # type: ignore[arg-type]
    result = run_trainer("evaluate", str(bundle), str(held_out), "--record", "held_out")
    assert result.returncode == 0, result.stderr
    recorded, why = card_baseline(read_card(bundle).metrics)
    assert recorded is not None, why
    assert recorded.source == "evaluate" and recorded.frames == 6 and "held.zip" in recorded.note
