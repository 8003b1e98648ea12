"""A package from two microscopes (256x256 and 1388x1040 frames) trains and evaluates at one
scale: the big frames run as tiles, nothing is stretched, and the plan says so at the start."""

from __future__ import annotations

import json
from itertools import chain
from pathlib import Path

import pytest

from trainer.bundle import read_card


@pytest.fixture(scope="module")
def mixed_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from device.datasets.package import synthetic_images, write_dataset_package
    from device.sources.synthetic import CLASSES

    scene = {"density": 60.0, "class_mix": (1.0, 0.0, 0.0)}
    images = chain(synthetic_images(8, 1, 256, 256, **scene), synthetic_images(2, 2, 1388, 1040, **scene))  # type: ignore[arg-type]
    path = tmp_path_factory.mktemp("mixed") / "mixed.zip"
    write_dataset_package(path, "two-microscopes", CLASSES, images)
    return path


def test_mixed_frame_sizes_train_and_evaluate_without_stretching(
    mixed_package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from trainer.cli import main
    from trainer.tiling import plan_frame

    out = tmp_path / "bundle"
    assert main(["train", str(mixed_package), "--out", str(out), "--epochs", "1", "--crop", "128", "--batch-size", "4",
                 "--val-fraction", "0.3", "--quiet"]) == 0
    said = capsys.readouterr().err
    assert "training plan:" in said and "256x256 (8), 1388x1040 (2)" in said and "for every frame" in said
    card = read_card(out)
    policy = card.input.tile_policy()
    assert card.input.resize == "tile" and policy is not None
    big = plan_frame((1040, 1388), policy)
    assert big.scale == policy.scale and len(big.origins) > 1  # the big frames at the same scale, as tiles
    assert plan_frame((256, 256), policy).origins == [(0, 0)]
    assert card.output.max_detections >= 100
    plan = card.metrics["training"]["plan"]
    assert plan["frame_sizes"] == {"256x256": 8, "1388x1040": 2} and plan["policy"]["scale"] == policy.scale
    assert main(["evaluate", str(out), str(mixed_package)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["val_images"] == 10 and result["val_objects"] > 0
