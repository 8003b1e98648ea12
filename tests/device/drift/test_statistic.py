"""The drift statistics against hand computations, and the baseline's format."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from device.detections import Detections
from device.drift.baseline import VALIDATION, Baseline, build_baseline, card_baseline, histogram
from device.drift.settings import DriftSettings
from device.drift.statistic import binned_median, psi


def test_psi_is_zero_for_equal_shares_and_matches_the_formula() -> None:
    assert psi(np.array([10, 20, 30]), np.array([1, 2, 3])) == pytest.approx(0.0, abs=0.02)
    e, a = np.array([50.0, 50.0]), np.array([80.0, 20.0])
    pe, pa = (e + 0.5) / (e + 0.5).sum(), (a + 0.5) / (a + 0.5).sum()
    assert psi(e, a) == pytest.approx(float(np.sum((pa - pe) * np.log(pa / pe))))
    assert math.isfinite(psi(np.array([100, 0]), np.array([0, 100])))  # an empty bin is large, never infinite


@pytest.mark.parametrize(("counts", "expected"), [([0, 10, 0], 1.5), ([5, 5], 1.0), ([0, 0, 4, 0], 2.5)])
def test_binned_median(counts: list[int], expected: float) -> None:
    edges = np.arange(len(counts) + 1, dtype=np.float64)
    assert binned_median(np.array(counts), edges) == pytest.approx(expected)


def test_decile_histogram_holds_a_tenth_per_bin() -> None:
    h = histogram(np.arange(1000.0))
    assert h is not None and len(h.counts) == 10 and set(h.counts) == {100}
    assert h.median == pytest.approx(499.5)
    assert histogram(np.array([])) is None


def test_baseline_of_frames_by_hand() -> None:
    frames = [Detections.from_lists([[0, 0, 10, 10], [0, 0, 20, 5]], [0.9, 0.5], [0, 1]),
              Detections.from_lists([[0, 0, 4, 9]], [0.7], [0])]
    b = build_baseline(frames, ["cell", "debris"], VALIDATION, um_per_pixel=[0.5, None])
    assert (b.frames, b.objects, b.objects_per_frame.mean) == (2, 3, 1.5)
    assert b.class_mix == pytest.approx({"cell": 2 / 3, "debris": 1 / 3})
    assert b.objects_per_frame_by_class == {"cell": 1.0, "debris": 0.5}
    assert b.size_px is not None and b.size_px.median == pytest.approx(10.0)  # sides 10, 10, 6
    assert b.size_um is not None and b.size_um.median == pytest.approx(5.0)  # the frame with a pixel size only
    assert b.score is not None and b.score.median == pytest.approx(0.7)
    assert Baseline.model_validate_json(b.model_dump_json()) == b


def test_card_baseline_says_why_not() -> None:
    assert card_baseline({}) == (None, "the bundle has no baseline")
    baseline, why = card_baseline({"baseline": {"source": "validation", "frames": 0}})
    assert baseline is None and "unreadable" in why


@pytest.mark.parametrize(("field", "value"), [("window_frames", 5), ("psi", 0.0), ("psi", float("inf")),
                                              ("size_change", 50), ("confirm_frames", 0), ("clear_ratio", 1.5),
                                              ("unknown", 1)])
def test_settings_refuse_out_of_range(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field if field != "unknown" else "Extra inputs"):
        DriftSettings.model_validate({field: value})


def test_confirmation_must_fit_the_window() -> None:
    with pytest.raises(ValidationError, match="confirm_frames .* must not exceed window_frames"):
        DriftSettings(window_frames=20, confirm_frames=30)
