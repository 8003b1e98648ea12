"""Device test fixtures: model bundles built with onnx.helper (no TensorFlow, no trainer needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.device.bundles import peak_detector_bundle


@pytest.fixture(scope="session")
def peak_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scopehive-v1 bundle (320x240 NHWC) that finds blobs in synthetic frames."""
    return peak_detector_bundle(tmp_path_factory.mktemp("bundles") / "peaks")


@pytest.fixture(scope="session")
def peak_bundle_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same detector as another model version, for hot-swap tests."""
    return peak_detector_bundle(tmp_path_factory.mktemp("bundles") / "peaks2", version="2.0.0", name="peaks-b")
