"""The trainer scores a stretch bundle on exactly the tensor its device feeds the model. Until
2026-12-03 the device enlarged frames with OpenCV's area mode while the trainer enlarged them
bilinearly, so `make demo` (640x480 frames, a 960x704 model) ran on pixels its held-out mAP was
never measured on (mean difference 12 grey levels on a noise frame)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.inference.preprocess import interpolation, preprocess
from device.models.bundle import InputSpec, Normalization
from trainer.predict import prepare_input

DEMO_CARD = json.loads((Path(__file__).resolve().parents[2] / "device" / "models" / "demo" / "model.json").read_text())


@pytest.mark.parametrize(("width", "height"), [(640, 480), (1280, 960), (960, 704), (1000, 600)],
                         ids=["enlarged (make demo)", "shrunk", "as is", "wider, less tall"])
def test_the_device_feeds_the_tensor_the_trainer_scored(width: int, height: int) -> None:
    spec, norm = InputSpec.model_validate(DEMO_CARD["input"]), Normalization.model_validate(DEMO_CARD["normalization"])
    rgb = np.random.default_rng(3).integers(0, 256, (height, width, 3), np.uint8)
    device, _ = preprocess(np.ascontiguousarray(rgb[:, :, ::-1]), spec, norm)  # the device is handed BGR
    trainer = prepare_input(rgb, (spec.height, spec.width))
    assert device.shape == (1, *trainer.shape)
    assert float(np.abs(device[0] - trainer).max()) <= 1e-6


def test_one_rule_area_when_any_side_shrinks_bilinear_when_only_enlarging() -> None:
    assert interpolation((1280, 960), (960, 704)) == cv2.INTER_AREA
    assert interpolation((1000, 600), (960, 704)) == cv2.INTER_AREA  # narrower: every column still counts
    assert interpolation((640, 480), (960, 704)) == cv2.INTER_LINEAR
    assert interpolation((960, 704), (960, 704)) == cv2.INTER_LINEAR
