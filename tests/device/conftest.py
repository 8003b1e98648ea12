"""Device test fixtures: model bundles built with onnx.helper (no TensorFlow, no trainer needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from device.config import DeviceConfig
from device.runtime import Runtime
from tests.device.bundles import peak_detector_bundle
from tests.device.runtime_helpers import start_runtime, wait_for


@pytest.fixture(scope="session")
def peak_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scopehive-v1 bundle (320x240 NHWC) that finds blobs in synthetic frames."""
    return peak_detector_bundle(tmp_path_factory.mktemp("bundles") / "peaks")


@pytest.fixture(scope="session")
def peak_bundle_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same detector as another model version, for hot-swap tests."""
    return peak_detector_bundle(tmp_path_factory.mktemp("bundles") / "peaks2", version="2.0.0", name="peaks-b")


@pytest.fixture
def running(peak_bundle: Path, tmp_path: Path) -> Iterator[Runtime]:
    config = DeviceConfig.model_validate({
        "source": "synthetic://?seed=4&width=320&height=240&fps=30", "model": str(peak_bundle),
        "data_dir": str(tmp_path), "port": 0, "device_name": "bench-1", "status_interval_s": 0.2})
    runtime, thread = start_runtime(config)
    assert wait_for(lambda: runtime.parts.publisher.processed >= 3)
    yield runtime
    runtime.stop()
    thread.join(timeout=5)
    runtime.shutdown()
