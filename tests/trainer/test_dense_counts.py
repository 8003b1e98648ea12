"""Counts on dense frames (issue 26 item 3): a count correction fitted on validation where it
measures better than counting boxes (leave-one-out), recorded in the card, scored in the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from device.models.bundle import CountModel, box_coverage
from trainer.counts import adopted_count_models, estimated_counts, fit_count_model, fit_count_models
from trainer.dataset import Sample
from trainer.metrics import Boxes
from trainer.predict import evaluate_predictions
from trainer.report import render_markdown

SIDE = 128  # frame side (px); objects 12 px


def _grid(n: int, side: int = 12) -> np.ndarray:
    per_row = SIDE // side
    return np.array([[side * (i % per_row), side * (i // per_row), side * (i % per_row) + side, side * (i // per_row) + side]
                     for i in range(n)], np.float64).reshape(-1, 4)


def _crowded(true_counts: list[int], loss_per_coverage: float = 0.5) -> tuple[list[Boxes], list[Boxes]]:
    """Truth boxes, and detections that lose a share of the objects growing with the frame's
    crowding (what merged and suppressed boxes of touching cells do)."""
    truth, preds = [], []
    for t in true_counts:
        boxes = _grid(t)
        cover = box_coverage(boxes, SIDE, SIDE)
        found = int(round(t * (1 - loss_per_coverage * cover)))
        truth.append(Boxes.truth(boxes, np.zeros(t, np.int64)))
        preds.append(Boxes(boxes[:found], np.full(found, 0.9), np.zeros(found, np.int64)))
    return truth, preds


def _pairs(truth: list[Boxes], preds: list[Boxes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    true = np.array([len(b.classes) for b in truth])
    found = np.array([len(b.classes) for b in preds])
    cover = np.array([box_coverage(b.xyxy, SIDE, SIDE) for b in preds])
    return true, found, cover


def test_crowding_loss_is_corrected_and_carries_over_to_frames_it_never_saw() -> None:
    truth, preds = _crowded([4, 10, 18, 25, 33, 40, 52, 60, 70, 80])
    fitted = fit_count_model(*_pairs(truth, preds))
    assert fitted["adopted"] is True and fitted["method"] == "coverage" and "leave-one-out" in str(fitted["reason"])
    assert float(fitted["loo_mae"]) < 0.5 * float(fitted["loo_mae_boxes"])  # type: ignore[arg-type]
    model = CountModel.model_validate(adopted_count_models({"cell": fitted})["cell"])  # type: ignore[index]
    new_truth, new_preds = _crowded([7, 22, 45, 66, 90])  # held out: other densities
    plain = np.abs(np.array([len(p.classes) for p in new_preds]) - [7, 22, 45, 66, 90]).mean()
    estimates = estimated_counts(new_preds, [(SIDE, SIDE)] * 5, ["cell"], {"cell": model.model_dump()})["cell"]
    corrected = np.abs(estimates - [7, 22, 45, 66, 90]).mean()
    assert plain > 5 and corrected < 0.25 * plain
    assert estimated_counts([Boxes(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))], [(SIDE, SIDE)], ["cell"],
                            {"cell": model.model_dump()})["cell"].tolist() == [0.0]  # no boxes: 0, never a guess


def test_exact_box_counts_are_left_alone_and_say_why() -> None:
    truth, preds = _crowded([4, 10, 18, 25, 33, 40, 52, 60, 70, 80], loss_per_coverage=0.0)
    fitted = fit_count_model(*_pairs(truth, preds))
    assert fitted["adopted"] is False and "boxes are counted" in str(fitted["reason"])
    assert adopted_count_models({"cell": fitted}) is None


def test_too_few_validation_images_fit_nothing() -> None:
    truth, preds = _crowded([10, 40, 60, 80, 90])
    fitted = fit_count_models(truth, preds, ["cell"], [(SIDE, SIDE)] * 5)["cell"]
    assert fitted["adopted"] is False and "5 validation images" in str(fitted["reason"])


def test_training_fits_the_correction_scores_it_and_reports_it() -> None:
    counts = [4, 10, 18, 25, 33, 40, 52, 60, 70, 80]
    truth, preds = _crowded(counts)
    samples = [Sample(f"f{i}.png", np.zeros((SIDE, SIDE, 3), np.uint8), t.xyxy.astype(np.float32), t.classes.astype(np.int32))
               for i, t in enumerate(truth)]
    m = evaluate_predictions(samples, preds, ["cell"])
    assert m["count_models"] and m["count_models"]["cell"]["method"] == "coverage"  # type: ignore[index]
    estimate, boxes = m["count_estimate_error"], m["count_error"]
    assert estimate["total_mae"] < 0.5 * boxes["total_mae"]  # type: ignore[index]
    given = evaluate_predictions(samples, preds, ["cell"], thresholds=m["class_thresholds"],  # type: ignore[arg-type]
                                 count_models=m["count_models"])  # type: ignore[arg-type]
    assert given["count_estimate_error"] == estimate and "count_model_fit" not in given  # a bundle's, used as given
    report = render_markdown("cells", "1", m)
    assert "## Counts on dense frames" in report and "cell: **corrected**" in report
    assert f"count MAE {estimate['total_mae']:.2f} per image (boxes: {boxes['total_mae']:.2f})" in report  # type: ignore[index]


def test_a_card_refuses_a_correction_for_a_class_it_does_not_have() -> None:
    from device.models.bundle import ModelCard
    from tests.device.bundles import card

    model = {"method": "ratio", "k": 1.2, "loo_mae_boxes": 3.0, "loo_mae": 1.0, "images": 9}
    with pytest.raises(ValueError, match="count_models names classes the model does not have"):
        ModelCard.model_validate(card("m", ["cell"], 64, 64, format_version=4, count_models={"nucleus": model}))
    good = ModelCard.model_validate(card("m", ["cell", "debris"], 64, 64, format_version=4, count_models={"cell": model}))
    xyxy = np.array([[0, 0, 8, 8]] * 5 + [[0, 0, 4, 4]], np.float32)
    assert good.count_estimates([0] * 5 + [1], xyxy, 64, 64) == {"cell": 6, "debris": 1}  # 5 x 1.2; debris counted box by box
    plain = ModelCard.model_validate(card("m", ["cell"], 64, 64))
    assert plain.count_estimates([0], xyxy[:1], 64, 64) is None


def test_an_evaluation_recorded_in_the_report_states_the_corrected_counts() -> None:
    from trainer.cli import _estimate_note

    result = {"count_error": {"total_mae": 6.5}, "count_estimate_error": {"total_mae": 1.25}}
    assert _estimate_note(result) == (" Corrected counts (count_models, the device's `count_estimate`): count MAE per image 1.25"
                                      " (boxes 6.50).")
    assert _estimate_note({"count_error": {"total_mae": 6.5}}) == ""  # a bundle without count_models


def test_a_trained_bundle_says_per_class_whether_its_counts_are_corrected(trained_bundle: Path) -> None:
    import json

    card = json.loads((trained_bundle / "model.json").read_text())
    fit = card["metrics"]["count_model_fit"]
    assert set(fit) == set(card["classes"]) and all(isinstance(m["adopted"], bool) and m["reason"] for m in fit.values())
    adopted = {name for name, m in fit.items() if m["adopted"]}
    assert set(card.get("count_models") or {}) == adopted  # the card carries exactly the adopted ones
    assert card["format_version"] == (4 if adopted else 3)  # format 4 only for a card that needs it
    assert adopted or "count_models" not in card  # devices before format 4 refuse any key they do not know
    assert "## Counts on dense frames" in (trained_bundle / "report.md").read_text()


def test_a_rewritten_card_without_corrections_leaves_the_key_out(tmp_path: Path) -> None:
    """A card re-written by the trainer (export, engines) reads on devices from before format 4,
    which refuse unknown keys: `count_models` is written only when there are corrections."""
    import json

    from tests.device.bundles import card
    from trainer.bundle import ModelCard as TrainerCard
    from trainer.bundle import write_card

    plain = TrainerCard.model_validate(card("m", ["cell"], 64, 64))
    write_card(tmp_path, plain)
    assert "count_models" not in json.loads((tmp_path / "model.json").read_text())
    model = {"method": "ratio", "k": 1.2, "loo_mae_boxes": 3.0, "loo_mae": 1.0, "images": 9}
    write_card(tmp_path, TrainerCard.model_validate(card("m", ["cell"], 64, 64, format_version=4, count_models={"cell": model})))
    assert json.loads((tmp_path / "model.json").read_text())["count_models"]["cell"]["k"] == 1.2
