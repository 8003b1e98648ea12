"""Against the synthetic microscope's truth, with the committed demo model at the demo settings:
an experiment's median cell size is within 5 % of the true median over the same frames, and
frames the focus drift blurred are excluded, counted as excluded, and never recorded as zeros."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from device.experiments.calibration import CalibrationProfile
from device.experiments.quality import QualityGate, QualitySettings
from device.experiments.recorder import ExperimentRecorder, FrameContext
from device.experiments.store import ExperimentRequest, ExperimentStore
from device.experiments.summary import summarise
from device.inference.detector import load_detector
from device.sources.synthetic import SyntheticMicroscope

DEMO_MODEL = Path(__file__).resolve().parents[3] / "device" / "models" / "demo"
UM_PER_PIXEL = 0.65  # device/demo.yaml


@pytest.mark.slow
def test_sizes_match_truth_and_blurred_frames_are_excluded(tmp_path: Path) -> None:
    if not (DEMO_MODEL / "model.onnx").is_file():
        pytest.fail("the committed demo model is missing (device/models/demo)")
    detector = load_detector(DEMO_MODEL, "auto", tmp_path / "cache", None)
    scope = SyntheticMicroscope(seed=1, density=60, width=640, height=480, um_per_pixel=UM_PER_PIXEL,
                                focus_drift=5.0, focus_period=30)
    gate = QualityGate(QualitySettings())
    store = ExperimentStore(tmp_path / "experiments.sqlite")
    store.save_profile(CalibrationProfile(name="10x", um_per_pixel=UM_PER_PIXEL))
    recorder = ExperimentRecorder(store, "scope", "demo", lambda *args: None)
    experiment = recorder.start(ExperimentRequest(name="truth", profile="10x"), {})
    true_cells: list[float] = []
    blurred = excluded = 0
    for _ in range(45):
        frame = scope.read()
        quality = gate.assess(frame.image)
        detections = detector.detect(frame.image) if quality.usable else None
        context = FrameContext(detector.card.classes, "demo", "1", UM_PER_PIXEL, frame.image.shape)
        recorder.record(frame.index * 100_000 + 1, frame.index, quality, quality.status, detections, context)
        blurred += frame.defocus >= 3.0
        if quality.usable:
            width, height = frame.truth_sizes_um()
            cells = frame.truth.class_ids == 0
            true_cells.extend(np.sqrt(width[cells] * height[cells]).tolist())
        else:
            excluded += 1
    recorder.stop()
    frames = store.frames(experiment.id)
    summary = summarise(store.get(experiment.id), frames, store.objects(experiment.id))
    measured = summary["classes"]["cell"]["size"]["median"]
    truth = float(np.median(true_cells))
    assert abs(measured / truth - 1) < 0.05, (measured, truth)
    assert blurred > 0 and excluded >= blurred  # every badly blurred frame is excluded...
    assert summary["frames"]["excluded_by_reason"] == {"out_of_focus": excluded}  # ...and counted as excluded
    assert summary["frames"]["analysed"] + excluded == 45
    assert all(f["count"] is None and f["counts"] is None for f in frames if f["analysed"] != "ok")  # never zeros
    assert summary["classes"]["cell"]["count"]["frames"] == 45 - excluded
