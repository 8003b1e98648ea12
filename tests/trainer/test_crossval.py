"""Cross-validation of small packages (issue 26 item 6): folds of whole acquisitions, when asked or
when the time limit leaves room; the figures in model.json and report.md beside the one split's."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.trainer.conftest import SMALL_RUN, SMALL_SCENE
from trainer.config import TrainConfig
from trainer.crossval import choose_folds
from trainer.dataset import load_dataset_package
from trainer.split import group_folds


def test_folds_hold_whole_groups_and_cover_every_image(train_package: Path) -> None:
    samples = load_dataset_package(train_package).samples
    folds = group_folds(samples, 3, seed=0)
    assert sorted(len(f) for f in folds) == [10, 11, 11]
    assert sorted(i for f in folds for i in f) == list(range(len(samples)))
    copies = [samples[0]] * 5 + [samples[1]] * 4  # two fields, each captured again and again
    assert group_folds(copies, 3, seed=0) == []  # two groups cannot make three independent folds
    two = group_folds(copies, 2, seed=0)
    assert sorted(map(sorted, two)) == [[0, 1, 2, 3, 4], [5, 6, 7, 8]]  # near-copies never straddle folds


@pytest.mark.parametrize(("folds", "images", "fit_s", "left_s", "expected", "says"), [
    (0, 40, 60, 3600, 0, "off"),
    (4, 500, 60, None, 4, "--folds"),
    (-1, 81, 60, 3600, 0, "at most 80"),
    (-1, 45, 60, None, 0, "fixed --epochs"),
    (-1, 45, 600, 900, 0, "would take ~30 min"),  # the CPU case: the main run used the time
    (-1, 45, 120, 900, 3, "few for one validation split"),  # a GPU trainer: time to spare
])
def test_when_cross_validation_runs(folds: int, images: int, fit_s: float, left_s: float | None, expected: int, says: str) -> None:
    choice = choose_folds(TrainConfig(folds=folds), images, fit_s, left_s)
    assert choice.folds == expected and says in choice.reason


def test_one_fold_is_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="folds 1 is no cross-validation"):
        TrainConfig(folds=1)


def test_a_fixed_epoch_run_says_why_it_did_not_cross_validate(trained_bundle: Path) -> None:
    cv = json.loads((trained_bundle / "model.json").read_text())["metrics"]["cross_validation"]
    assert cv["folds"] == 0 and "fixed --epochs" in cv["note"]
    assert "Cross-validation: cross-validation not run" in (trained_bundle / "report.md").read_text()


def test_two_folds_train_score_and_report(tmp_path: Path) -> None:
    """The folds themselves, without the main model's training and export (the pipeline's wiring of
    cross_validation into model.json is what the fixed-epoch test above reads)."""
    from device.datasets.package import write_synthetic_package
    from trainer.crossval import FoldChoice, cross_validate
    from trainer.plan import make_plan
    from trainer.progress import ProgressReporter
    from trainer.report import cross_validation_lines

    package = tmp_path / "small.zip"
    write_synthetic_package(package, count=12, seed=5, **SMALL_SCENE)  # type: ignore[arg-type]
    dataset = load_dataset_package(package)
    config = TrainConfig(**{**SMALL_RUN, "epochs": 1, "folds": 2})  # type: ignore[arg-type]
    plan = replace(make_plan(dataset.samples, dataset.samples, dataset.classes, config), steps_per_epoch=2)  # a figure, not a model
    reporter = ProgressReporter(tmp_path, plan.epochs, plan.steps_per_epoch, quiet=True)
    try:
        cv = cross_validate(dataset.samples, dataset.classes, plan, config, tmp_path / "work", FoldChoice(2, "--folds 2"), reporter)
    finally:
        reporter.close()
    assert cv["folds"] == 2 and sum(r["images"] for r in cv["per_fold"]) == 12  # every image scored once
    assert all(0.0 <= r["map50"] <= 1.0 and r["epochs_run"] == 1 for r in cv["per_fold"])
    assert cv["map50_mean"] == pytest.approx(sum(r["map50"] * r["images"] for r in cv["per_fold"]) / 12)
    report = "\n".join(cross_validation_lines({"cross_validation": cv, "map50": 0.5}))
    assert "## Cross-validation: 2 folds" in report and f"{cv['map50_mean']:.3f} ± {cv['map50_sd']:.3f}" in report
    assert "the one validation split said 0.500" in report
    assert not list((tmp_path / "work").rglob("fold-*"))  # the folds' models are figures only
