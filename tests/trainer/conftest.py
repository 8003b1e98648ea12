"""Trainer fixtures: one small real training run shared by the tests that need a trained model.

Tests marked `tensorrt` are skipped where TensorRT cannot be imported (no NVIDIA GPU here).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Small enough for 2 shared CPU cores (about a minute), long enough to learn clearly.
SMALL_RUN = {"epochs": 10, "input_size": 320, "crop": 160, "batch_size": 8, "seed": 3, "val_fraction": 0.25, "learning_rate": 0.005}
# Cells only: one class of clearly visible, often touching objects is learnable in a minute.
SMALL_SCENE = {"width": 320, "height": 240, "density": 120.0, "class_mix": (1.0, 0.0, 0.0)}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if importlib.util.find_spec("tensorrt") is not None:
        return
    skip = pytest.mark.skip(reason="TensorRT is not installed (needs an NVIDIA GPU); engine tests run where it is")
    for item in items:
        if "tensorrt" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def train_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 synthetic frames at 320x240, densely populated with cells (about 9 per frame)."""
    from device.datasets.package import write_synthetic_package

    path = tmp_path_factory.mktemp("trainpkg") / "train.zip"
    write_synthetic_package(path, count=32, seed=11, **SMALL_SCENE)  # type: ignore[arg-type]
    return path


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory, train_package: Path) -> Path:
    """A bundle from a real (short) training run; read-only for the tests that use it."""
    from trainer.config import TrainConfig
    from trainer.pipeline import train_bundle

    out = tmp_path_factory.mktemp("bundle") / "small-model"
    train_bundle(train_package, out, TrainConfig(**SMALL_RUN), quiet=True)  # type: ignore[arg-type]
    return out
