"""One model across magnifications: a bundle trained at one µm per pixel runs a frame of another at
the scale that brings its objects to the trained size, boxes back in the frame's pixels, and the
scale used is on the frame's point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from device.inference.detector import load_detector
from device.inference.tiling import calibrated_scale
from tests.device.inference.test_tiling import _discs, _tiled_peaks


def _calibrated(tmp_path: Path, um_per_pixel: float) -> Path:
    bundle = _tiled_peaks(tmp_path / "peaks", (256, 256), 64)
    card = json.loads((bundle / "model.json").read_text())
    card["format_version"] = 3
    card["input"]["um_per_pixel"] = um_per_pixel
    (bundle / "model.json").write_text(json.dumps(card))
    return bundle


@pytest.mark.parametrize(("scale", "frame_um", "trained_um", "expected"), [
    (1.0, 1.0, 0.5, 2.0),  # a 10x frame on a model trained at 20x: enlarged twice
    (1.5, 0.25, 0.5, 0.75),  # a 40x frame: shrunk
    (1.0, None, 0.5, 1.0),  # uncalibrated frame: the card's scale
    (1.0, 1.0, None, 1.0),  # bundle without um_per_pixel: the card's scale
])
def test_the_calibrated_scale(scale: float, frame_um: float | None, trained_um: float | None, expected: float) -> None:
    assert calibrated_scale(scale, frame_um, trained_um) == pytest.approx(expected)


def test_a_frame_of_another_magnification_runs_at_the_trained_object_size(tmp_path: Path) -> None:
    detector = load_detector(_calibrated(tmp_path, 0.5), "onnx", tmp_path)
    frame, centres = _discs(320, 240, 10, seed=4)
    as_trained = detector.analyse(frame)  # no calibration known: the card's scale 1
    at_10x = detector.analyse(frame, um_per_pixel=1.0)  # pixels twice as large as trained: run at 2x
    assert as_trained.fields["input_scale"] == 1.0 and at_10x.fields["input_scale"] == 2.0
    for run, scale in ((as_trained, 1.0), (at_10x, 2.0)):
        boxes = run.detections.xyxy
        found = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
        distance = np.linalg.norm(found[:, None] - centres[None], axis=2)
        assert distance.min(axis=0).max() <= 1.5  # every object found, in the frame's own pixels
        assert distance.min(axis=1).max() <= 1.5  # (the toy peak finder may answer twice on an enlarged blob's plateau)
        widths = boxes[:, 2] - boxes[:, 0]
        assert np.median(widths) == pytest.approx(np.median(as_trained.detections.xyxy[:, 2] - as_trained.detections.xyxy[:, 0]) / scale, rel=0.15)
