"""`make demo`'s pieces: device/demo.yaml is valid and the committed demo bundle runs on the device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from device.cli import main
from device.config import load_config
from device.inference.detector import load_detector
from device.sources.synthetic import SyntheticMicroscope

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "device" / "models" / "demo"


def test_demo_config_is_valid() -> None:
    config = load_config(ROOT / "device" / "demo.yaml", environ={})
    assert config.source.startswith("synthetic://") and config.influx.url == "" and config.port == 8080


@pytest.mark.skipif(not (DEMO / "model.json").is_file(), reason="the trainer's demo bundle is not committed yet")
def test_demo_bundle_finds_the_synthetic_objects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    detector = load_detector(DEMO, "auto", tmp_path)
    scope = SyntheticMicroscope(seed=21, density=60, width=640, height=480)  # demo.yaml's camera
    truth_total = found_total = 0
    centres_hit = []
    for _ in range(3):
        frame = scope.read()
        found = detector.detect(frame.image)
        truth_total += len(frame.truth)
        found_total += len(found)
        cx = (frame.truth.xyxy[:, 0] + frame.truth.xyxy[:, 2]) / 2
        cy = (frame.truth.xyxy[:, 1] + frame.truth.xyxy[:, 3]) / 2
        inside = ((found.xyxy[None, :, 0] <= cx[:, None]) & (cx[:, None] <= found.xyxy[None, :, 2])
                  & (found.xyxy[None, :, 1] <= cy[:, None]) & (cy[:, None] <= found.xyxy[None, :, 3]))
        centres_hit.append(inside.any(axis=1).mean())
    assert 0.6 * truth_total <= found_total <= 1.5 * truth_total
    assert float(np.mean(centres_hit)) >= 0.6
    monkeypatch.chdir(ROOT)
    assert main(["run", "--config", "device/demo.yaml", "--validate-config", "--data-dir", str(tmp_path)]) == 0
