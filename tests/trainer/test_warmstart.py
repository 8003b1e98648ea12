"""Warm start: a bundle carries its weights, and a new model of the same classes or more starts from them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from trainer.warmstart import SPEC, WEIGHTS, WarmStartError, check, load_into


def test_every_trained_bundle_carries_its_weights_and_classes(trained_bundle: Path) -> None:
    source = check(trained_bundle, ["cell", "crystal", "debris"], 0.35)
    assert source["classes"] == ["cell", "crystal", "debris"]
    assert (trained_bundle / WEIGHTS).stat().st_size > 100_000


def test_the_same_classes_start_from_exactly_the_running_weights(trained_bundle: Path) -> None:
    from trainer.model import ModelSpec, build_raw_model

    old = build_raw_model(ModelSpec(3, 0.35))
    old.load_weights(trained_bundle / WEIGHTS)
    new = build_raw_model(ModelSpec(3, 0.35))
    assert "new class" not in load_into(new, trained_bundle, ["cell", "crystal", "debris"])
    for a, b in zip(old.get_weights(), new.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_superset_keeps_each_known_class_channel_and_starts_the_new_class_fresh(trained_bundle: Path) -> None:
    from trainer.model import ModelSpec, build_raw_model

    old = build_raw_model(ModelSpec(3, 0.35))
    old.load_weights(trained_bundle / WEIGHTS)
    new = build_raw_model(ModelSpec(4, 0.35))
    fresh_bias = new.get_layer("heatmap").get_weights()[1].copy()
    message = load_into(new, trained_bundle, ["platelet", "debris", "cell", "crystal"])  # another order, one new class
    assert "platelet" in message
    old_kernel, old_bias = old.get_layer("heatmap").get_weights()
    kernel, bias = new.get_layer("heatmap").get_weights()
    for new_index, old_index in ((1, 2), (2, 0), (3, 1)):
        np.testing.assert_array_equal(kernel[..., new_index], old_kernel[..., old_index])
        assert bias[new_index] == old_bias[old_index]
    assert bias[0] == fresh_bias[0]  # the prior, not another class's weights
    np.testing.assert_array_equal(new.get_layer("backbone").get_weights()[0], old.get_layer("backbone").get_weights()[0])


@pytest.mark.parametrize(("classes", "width", "says"), [
    (["cell", "crystal"], 0.35, "debris"),  # the project dropped a class the model knows
    (["cell", "crystal", "debris"], 0.5, "width multiplier"),
])
def test_weights_that_do_not_fit_are_a_cold_start_that_says_why(trained_bundle: Path, classes: list[str], width: float, says: str) -> None:
    with pytest.raises(WarmStartError, match=says):
        check(trained_bundle, classes, width)


def test_a_bundle_from_before_warm_start_says_it_carries_no_weights(trained_bundle: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(trained_bundle, old)
    (old / WEIGHTS).unlink()
    (old / SPEC).unlink()
    with pytest.raises(WarmStartError, match="no training weights"):
        check(old, ["cell", "crystal", "debris"], 0.35)


def test_train_refuses_init_weights_that_do_not_fit_before_writing_anything(trained_bundle: Path, tmp_path: Path) -> None:
    from device.datasets.package import write_synthetic_package
    from trainer.cli import main

    package = tmp_path / "two.zip"
    write_synthetic_package(package, count=2, seed=1, width=160, height=128, mode="phase")  # cell, rounded_cell
    out = tmp_path / "out"
    assert main(["train", str(package), "--out", str(out), "--init-from", str(trained_bundle)]) == 2
    assert not out.exists()
