"""Trainer fixtures: one small real training run shared by the tests that need a trained model
(one per test run: the xdist workers share it through a locked folder, so the second worker waits
for the first one's bundle instead of training its own on the same two cores).

Tests marked `tensorrt` are skipped where TensorRT cannot be imported (no NVIDIA GPU here).
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
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


def _shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder all xdist workers of this run share (the parent of each worker's base temp)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def train_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 synthetic frames at 320x240, densely populated with cells (about 9 per frame)."""
    from device.datasets.package import write_synthetic_package

    root = _shared_root(tmp_path_factory)
    path = root / "trainpkg" / "train.zip"
    with _locked(root / "trainpkg.lock"):
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            write_synthetic_package(partial, count=32, seed=11, **SMALL_SCENE)  # type: ignore[arg-type]
            partial.rename(path)
    return path


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory, train_package: Path) -> Path:
    """A bundle from a real (short) training run; read-only for the tests that use it."""
    from trainer.config import TrainConfig
    from trainer.pipeline import train_bundle

    root = _shared_root(tmp_path_factory)
    out, done = root / "bundle" / "small-model", root / "bundle" / "small-model.done"
    with _locked(root / "bundle.lock"):
        if not done.is_file():  # a worker that failed half-way left no marker: train afresh
            shutil.rmtree(out, ignore_errors=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            train_bundle(train_package, out, TrainConfig(**SMALL_RUN), quiet=True)  # type: ignore[arg-type]
            done.touch()
    return out
