"""Frame quality on the synthetic microscope: sharp frames pass, defocused and badly exposed
frames are gated, and the `analysed` rule agrees with the pipeline's `inference`."""

from __future__ import annotations

import numpy as np
import pytest

from device.analysis import Analysis
from device.detections import Detections
from device.experiments.quality import QualityGate, QualitySettings, score
from device.sources.synthetic import SyntheticMicroscope

DEMO = {"seed": 1, "density": 60, "width": 640, "height": 480}


def _statuses(gate: QualityGate, **knobs: float) -> list[str]:
    scope = SyntheticMicroscope(**DEMO, **knobs)  # type: ignore[arg-type]
    return [gate.assess(scope.read().image).status for _ in range(6)]


@pytest.mark.parametrize(("knobs", "expected"), [
    ({}, "ok"),
    ({"defocus": 4.0}, "out_of_focus"),
    ({"exposure": 1.6}, "overexposed"),
    ({"exposure": 0.02}, "underexposed"),
])
def test_gates_after_sharp_frames(knobs: dict[str, float], expected: str) -> None:
    gate = QualityGate(QualitySettings())
    assert set(_statuses(gate)) == {"ok"}  # the sample's sharp reference
    assert set(_statuses(gate, **knobs)) == {expected}


def test_focus_drift_is_excluded_while_blurred_and_back_when_sharp() -> None:
    scope = SyntheticMicroscope(**DEMO, focus_drift=5.0, focus_period=40)  # type: ignore[arg-type]
    gate = QualityGate(QualitySettings())
    rows = [(f.defocus, gate.assess(f.image).status) for f in (scope.read() for _ in range(80))]
    assert all(status == "out_of_focus" for sigma, status in rows if sigma >= 3.0)
    assert all(status == "ok" for sigma, status in rows if sigma <= 1.0)


def test_gates_off_pass_everything_unscored() -> None:
    gate = QualityGate(QualitySettings(enabled=False))
    quality = gate.assess(np.zeros((480, 640, 3), np.uint8))
    assert quality.status == "ok" and np.isnan(quality.focus)


def test_scores_of_literal_frames() -> None:
    flat = np.full((96, 128), 128, np.uint8)
    assert score(flat) == (0.0, 0.0, 0.0)
    white = np.full((96, 128, 3), 255, np.uint8)
    assert score(white)[1] == 1.0
    sixteen = np.full((96, 128), 65535, np.uint16)  # a 16-bit camera at full scale is clipped white
    assert score(sixteen)[1] == 1.0


@pytest.mark.parametrize(("present", "inference", "analysed"), [
    (True, "local", "ok"), (True, "remote:triton", "ok"), (True, "fallback", "ok"),
    (False, "out_of_focus", "out_of_focus"), (False, "overexposed", "overexposed"),
    (False, "no_model", "no_model"), (False, "skipped", "skipped"), (False, "failed", "failed"),
])
def test_analysed_follows_inference(present: bool, inference: str, analysed: str) -> None:
    """One vocabulary: the `analysed` tag is `ok` or the very word `inference` says (failed stays failed)."""
    analysis = Analysis("main", inference, Detections.empty() if present else None)
    assert analysis.status == analysed


@pytest.mark.parametrize(("inference", "detections"), [
    ("local", None), ("remote:x", None), ("none", None), ("skipped", Detections.empty()), ("failed", Detections.empty()),
    ("remote:", Detections.empty()), ("anything", Detections.empty()),
])
def test_not_analysed_cannot_be_zero(inference: str, detections: Detections | None) -> None:
    """A route without boxes, or a not-analysed word with (empty) boxes, is refused on construction."""
    with pytest.raises(ValueError, match="pipeline main"):
        Analysis("main", inference, detections)
