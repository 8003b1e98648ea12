"""TensorRT engines: naming everywhere; real FP16/INT8 builds where TensorRT and a GPU exist."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from trainer.bundle import read_card
from trainer.engines import EngineError, engine_file, import_tensorrt


@pytest.mark.parametrize(
    ("version", "cc", "precision", "expected"),
    [
        ("10.3.0.26", "8.7", "fp16", "engines/trt10.3_sm87_fp16.engine"),
        ("8.5.2", "5.3", "int8", "engines/trt8.5_sm53_int8.engine"),
        ("10.13.3.9", "9.0", "fp32", "engines/trt10.13_sm90_fp32.engine"),
    ],
)
def test_engine_file_is_keyed_by_tensorrt_and_gpu(version: str, cc: str, precision: str, expected: str) -> None:
    assert engine_file(version, cc, precision) == expected  # type: ignore[arg-type]


def test_missing_tensorrt_is_explained() -> None:
    try:
        import_tensorrt()
    except EngineError as exc:
        assert "NVIDIA GPU" in str(exc) and "model.onnx" in str(exc)
    else:
        pytest.skip("TensorRT is installed here")


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_engine_is_built_recorded_and_accepted_by_the_device(
    trained_bundle: Path, train_package: Path, tmp_path: Path, precision: str
) -> None:
    import numpy as np

    from device.models.bundle import load_bundle
    from trainer.dataset import load_dataset_package
    from trainer.engines import add_engine
    from trainer.predict import prepare_input

    bundle = tmp_path / "bundle"
    shutil.copytree(trained_bundle, bundle)
    card = read_card(bundle)
    hw = (card.input.height, card.input.width)
    frames = np.stack([prepare_input(s.image, hw) for s in load_dataset_package(train_package).samples[:16]])
    spec = add_engine(bundle, precision, frames)  # type: ignore[arg-type]
    assert (bundle / spec.file).stat().st_size > 10_000
    assert read_card(bundle).engines[-1] == spec
    loaded = load_bundle(bundle)
    assert loaded.engine_for(spec.tensorrt_version, spec.compute_capability) == bundle / spec.file
