"""Per-class score thresholds from model.json are what the device keeps; old bundles still load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from device.detections import Detections
from device.inference.decode import keep_class_thresholds
from device.inference.detector import load_detector
from device.models.bundle import BundleError, load_bundle
from tests.device.bundles import yolov8_bundle


def _with_card(bundle: Path, tmp_path: Path, **changes: object) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(bundle, target)
    card = json.loads((target / "model.json").read_text())
    card.update(changes)
    (target / "model.json").write_text(json.dumps(card))
    return target


@pytest.mark.parametrize(
    ("thresholds", "kept"),
    [
        ([0.5, 0.5, 0.5], [0, 1, 3]),
        ([0.2, 0.9, 0.5], [0, 2, 3]),  # crystals (0.8, 0.4) fall below 0.9, the cell at 0.3 stays
        ([0.95, 0.1, 0.1], [1, 3, 4]),
    ],
)
def test_each_box_is_kept_at_its_own_class_threshold(thresholds: list[float], kept: list[int]) -> None:
    boxes = Detections.from_lists([[0, 0, 1, 1]] * 5, [0.9, 0.8, 0.3, 0.6, 0.4], [0, 1, 0, 2, 1])
    out = keep_class_thresholds(boxes, np.asarray(thresholds, np.float32))
    assert out.scores.tolist() == pytest.approx(boxes.scores[kept].tolist())
    assert out.class_ids.tolist() == boxes.class_ids[kept].tolist()


def _two_class_bundle(tmp_path: Path, **card: object) -> Path:
    """A fixed YOLOv8 head: a bead at 0.9 and 0.5, a bubble at 0.6 (apart, so NMS keeps all)."""
    head = np.zeros((1, 6, 3), np.float32)
    head[0, :, 0] = [12, 12, 8, 8, 0.9, 0.0]
    head[0, :, 1] = [40, 40, 8, 8, 0.5, 0.0]
    head[0, :, 2] = [12, 48, 8, 8, 0.0, 0.6]
    bundle = yolov8_bundle(tmp_path / "yolo", head, ["bead", "bubble"])
    return _with_card(bundle, tmp_path, **card) if card else bundle


@pytest.mark.parametrize(
    ("class_thresholds", "override", "scores"),
    [
        (None, None, [0.9, 0.6, 0.5]),  # an old bundle: score_threshold 0.25 for both classes
        ({"bead": 0.7, "bubble": 0.55}, None, [0.9, 0.6]),
        ({"bead": 0.3, "bubble": 0.65}, None, [0.9, 0.5]),
        ({"bead": 0.3}, None, [0.9, 0.6, 0.5]),  # bubble falls back to score_threshold
        ({"bead": 0.7, "bubble": 0.55}, 0.55, [0.9, 0.6]),  # an operator's override is one for all
        ({"bead": 0.95, "bubble": 0.95}, 0.4, [0.9, 0.6, 0.5]),
    ],
)
def test_detector_keeps_boxes_at_the_bundles_class_thresholds(
    tmp_path: Path, class_thresholds: dict[str, float] | None, override: float | None, scores: list[float]
) -> None:
    bundle = _two_class_bundle(tmp_path, class_thresholds=class_thresholds) if class_thresholds else _two_class_bundle(tmp_path)
    found = load_detector(bundle, "onnx", tmp_path / "cache", threshold=override).detect(np.zeros((64, 64, 3), np.uint8))
    assert sorted(found.scores.tolist(), reverse=True) == pytest.approx(scores)


def test_bundle_without_class_thresholds_uses_one_for_all(peak_bundle: Path) -> None:
    card = load_bundle(peak_bundle).card
    assert card.class_thresholds is None and card.thresholds() == [card.score_threshold] * 3


@pytest.mark.parametrize(("value", "message"), [({"amoeba": 0.5}, "does not have"), ({"cell": 1.5}, "less than or equal")])
def test_bad_class_thresholds_are_rejected(peak_bundle: Path, tmp_path: Path, value: object, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        load_bundle(_with_card(peak_bundle, tmp_path, class_thresholds=value))
