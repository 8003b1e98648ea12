"""Per-class thresholds fitted to the count error, and the count agreement the report shows."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.counts import (
    agreement,
    count_agreement,
    fit_class_thresholds,
    fit_count_threshold,
    keep_above,
    threshold_vector,
)
from trainer.metrics import Boxes
from trainer.predict import FITTED, GIVEN, evaluate_predictions


def _dets(scores: list[float], classes: list[int]) -> Boxes:
    xyxy = np.array([[10 * i, 0, 10 * i + 8, 8] for i in range(len(scores))], np.float64).reshape(-1, 4)
    return Boxes(xyxy, np.asarray(scores, np.float64), np.asarray(classes, np.int64))


def _truth(classes: list[int]) -> Boxes:
    return Boxes.truth(np.array([[10 * i, 0, 10 * i + 8, 8] for i in range(len(classes))]).reshape(-1, 4), np.asarray(classes))


def test_count_threshold_sits_between_the_last_true_and_the_first_false_score() -> None:
    # Two objects per image; the model scores them 0.8/0.7 and a false peak 0.3: any threshold in
    # (0.3, 0.7] counts exactly; the middle of that plateau is chosen.
    truth = [_truth([0, 0])] * 3
    preds = [_dets([0.8, 0.7, 0.3], [0, 0, 0])] * 3
    assert fit_count_threshold(truth, preds, 0, fallback=0.5) == pytest.approx(0.505, abs=0.006)


def test_each_class_gets_its_own_threshold() -> None:
    # Class 0 is found with high scores, class 1 (small, hard) with low ones: one threshold for both
    # miscounts one of them, two thresholds count both exactly.
    truth = [_truth([0, 0, 1, 1])] * 4
    preds = [_dets([0.9, 0.85, 0.5, 0.35, 0.45, 0.4, 0.1], [0, 0, 0, 0, 1, 1, 1])] * 4
    fitted = fit_class_thresholds(truth, preds, ["big", "small"], fallback=0.5)
    assert 0.5 < fitted["big"] <= 0.85 and 0.1 < fitted["small"] <= 0.4
    kept = keep_above(preds, threshold_vector(["big", "small"], fitted, 0.5))
    assert count_agreement(truth, kept, ["big", "small"])["per_class"]["small"]["exact_share"] == 1.0


def test_a_class_never_seen_keeps_the_fallback() -> None:
    assert fit_count_threshold([_truth([0])], [_dets([0.9], [0])], 1, fallback=0.42) == 0.42


def test_bland_altman_figures() -> None:
    result = agreement(np.array([10, 10, 10, 10]), np.array([11, 9, 12, 10]))
    assert result["bias"] == pytest.approx(0.5) and result["mae"] == pytest.approx(1.0)
    assert result["exact_share"] == pytest.approx(0.25)
    spread = np.std([1, -1, 2, 0], ddof=1)
    assert result["loa_low"] == pytest.approx(0.5 - 1.96 * spread) and result["loa_high"] == pytest.approx(0.5 + 1.96 * spread)


def test_relative_count_error_with_its_spread() -> None:
    # true 10, 10, 20, 40, 0 found 11, 10, 16, 40, 0: relative errors 0.1, 0, 0.2, 0 (the empty image has none)
    result = agreement(np.array([10, 10, 20, 40, 0]), np.array([11, 10, 16, 40, 0]))
    assert result["relative_error_median"] == pytest.approx(0.05)
    assert result["relative_error_p90"] == pytest.approx(np.percentile([0.1, 0, 0.2, 0], 90))
    assert result["within_10pct_share"] == pytest.approx(4 / 5)  # 16 of 20 is 20 % off; the empty image found none
    assert agreement(np.array([0]), np.array([2]))["within_10pct_share"] == 0.0  # objects where none are: not within
    assert agreement(np.array([], int), np.array([], int))["within_10pct_share"] is None


def test_the_report_states_the_relative_error_and_within_10_percent() -> None:
    from trainer.report import render_markdown

    truth = [_truth([0] * 10), _truth([0] * 20)]
    kept = [_dets([0.9] * 11, [0] * 11), _dets([0.9] * 20, [0] * 20)]
    counts = count_agreement(truth, kept, ["cell"])
    metrics = {"val_images": 2, "val_objects": 30, "map50": 0.9, "map50_95": 0.6, "precision": 0.9, "recall": 0.9, "f1": 0.9,
               "per_class": {"cell": {"map50": 0.9, "map50_95": 0.6}}, "count_error": counts}
    text = render_markdown("cells", "1", metrics)
    assert "| cell | 0.900 | 0.600 | n/a | 50 % | 100 % | 5.0 %, 9.0 % |" in text  # 1/10 off and exact: median 5 %
    assert "within 10 % of the truth on 100 %" in text


def test_evaluation_at_given_thresholds_uses_them_and_says_so() -> None:
    from trainer.dataset import Sample

    samples = [Sample(f"{i}.png", np.zeros((32, 64, 3), np.uint8), _truth([0, 0]).xyxy.astype(np.float32), np.zeros(2, np.int32)) for i in range(3)]
    preds = [_dets([0.8, 0.7, 0.3], [0, 0, 0])] * 3
    fitted = evaluate_predictions(samples, preds, ["cell"])
    assert fitted["thresholds_from"] == FITTED and fitted["count_error"]["per_class"]["cell"]["exact_share"] == 1.0  # type: ignore[index]
    given = evaluate_predictions(samples, preds, ["cell"], thresholds={"cell": 0.2})
    assert given["thresholds_from"] == GIVEN and given["class_thresholds"] == {"cell": 0.2}
    assert given["count_error"]["per_class"]["cell"]["bias"] == pytest.approx(1.0)  # type: ignore[index]
    assert given["precision"] == pytest.approx(2 / 3) and given["recall"] == pytest.approx(1.0)


def test_report_shows_the_frames_with_the_largest_count_errors() -> None:
    from trainer.dataset import Sample
    from trainer.report_figure import render_png, worst_frames

    truth = [_truth([0, 0]), _truth([0, 1, 1]), _truth([1]), _truth([0])]
    kept = [_dets([0.9, 0.9], [0, 0]), _dets([0.9], [1]), _dets([0.9, 0.9, 0.9], [1, 1, 0]), _dets([0.9], [1])]
    # errors per frame (sum over classes): 0, 1 + 1 = 2, 1 + 1 = 2, 1 + 1 = 2 -> frame 0 last
    assert worst_frames(truth, kept, 2) == [1, 2, 3]
    samples = [Sample(f"{i}.png", np.zeros((16, 64, 3), np.uint8), t.xyxy.astype(np.float32), t.classes.astype(np.int32)) for i, t in enumerate(truth)]
    png = render_png(samples, kept, ["a", "b"], {"a": 0.5, "b": 0.5})
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_report_says_when_the_time_limit_cut_the_run() -> None:
    from trainer.report import render_markdown

    counts = count_agreement([_truth([0])], [_dets([0.9], [0])], ["cell"])
    base = {"val_images": 1, "val_objects": 1, "map50": 0.9, "map50_95": 0.6, "precision": 1.0, "recall": 1.0, "f1": 1.0,
            "per_class": {"cell": {"map50": 0.9, "map50_95": 0.6}}, "count_error": counts}
    training = {"epochs_run": 8, "epochs": 14, "best_epoch": 8, "seconds": 800.0, "interrupted": False, "device": "cpu"}
    cut = render_markdown("cells", "1", {**base, "training": {**training, "time_cut": True}})
    assert "**The time limit cut this run** to 8 of 14 planned epochs on this machine's CPU" in cut
    assert "The time limit cut" not in render_markdown("cells", "1", {**base, "training": {**training, "time_cut": False}})
