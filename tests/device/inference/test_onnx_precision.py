"""Which ONNX model a device runs (float or the bundle's INT8 copy) and on how many threads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from device.inference.detector import load_detector
from device.inference.onnx_backend import CPU_PROVIDER, choose_model, intra_op_threads
from device.models.bundle import BundleError, load_bundle
from tests.device.bundles import peak_detector_bundle


def _with_int8(folder: Path, **spec: Any) -> Path:
    """The peak detector with a copy of its graph as the INT8 model (which file opens is what counts here)."""
    bundle = peak_detector_bundle(folder)
    shutil.copy(bundle / "model.onnx", bundle / "model.int8.onnx")
    card = json.loads((bundle / "model.json").read_text())
    card["int8"] = {"file": "model.int8.onnx", **spec}
    (bundle / "model.json").write_text(json.dumps(card))
    return bundle


@pytest.mark.parametrize(
    ("spec", "provider", "precision", "runs", "why"),
    [
        (None, CPU_PROVIDER, "auto", "fp32", "no INT8 model"),
        ({"default": True, "reason": "the default on CPU: mAP@0.5 0.93 vs 0.93"}, CPU_PROVIDER, "auto", "int8", "0.93 vs 0.93"),
        ({"default": False, "reason": "not the default: it loses 0.040 mAP@0.5"}, CPU_PROVIDER, "auto", "fp32", "loses 0.040"),
        ({"default": True}, "CUDAExecutionProvider", "auto", "fp32", "CUDAExecutionProvider runs the float model"),
        ({"default": True}, CPU_PROVIDER, "float", "fp32", "float asked for"),
        ({"default": False}, CPU_PROVIDER, "int8", "int8", "INT8 asked for"),
    ],
    ids=["no int8", "int8 default on CPU", "int8 refused by the trainer", "GPU", "float forced", "int8 forced"],
)
def test_the_device_picks_int8_on_cpu_only_when_the_bundle_marks_it_default(
        tmp_path: Path, spec: dict[str, Any] | None, provider: str, precision: Any, runs: str, why: str) -> None:
    folder = _with_int8(tmp_path / "b", **spec) if spec is not None else peak_detector_bundle(tmp_path / "b")
    choice = choose_model(load_bundle(folder), provider, precision)
    assert choice.precision == runs and why in choice.why
    assert choice.path.name == ("model.int8.onnx" if runs == "int8" else "model.onnx")


def test_int8_asked_for_without_an_int8_model_says_so(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no INT8 model"):
        choose_model(load_bundle(peak_detector_bundle(tmp_path / "b")), CPU_PROVIDER, "int8")


def test_the_running_precision_is_in_the_backend_name_and_status(tmp_path: Path) -> None:
    """What health, the status point and the Models page show (they all print the backend's name)."""
    detector = load_detector(_with_int8(tmp_path / "b", default=True, reason="ok"), "onnx", tmp_path / "cache")
    assert detector.backend_name == "onnx/CPU/int8"
    assert detector.backend.status_fields()["precision"] == "int8"  # type: ignore[attr-defined]


def test_a_bundle_without_int8_still_runs_the_float_model(tmp_path: Path) -> None:
    detector = load_detector(peak_detector_bundle(tmp_path / "b"), "onnx", tmp_path / "cache")
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[100:110, 150:160] = 255
    assert detector.backend_name == "onnx/CPU" and len(detector.detect(frame)) >= 1
    assert detector.backend.status_fields() == {"precision": "fp32", "onnx_threads": detector.backend.threads}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("edit", "message"),
    [({"file": "../elsewhere.onnx"}, "top level"), ({"file": "model.onnx"}, "other than model.onnx"),
     ({"file": "missing.int8.onnx"}, "not in the bundle")],
)
def test_a_card_naming_a_bad_int8_file_is_refused_with_what_to_do(tmp_path: Path, edit: dict[str, str], message: str) -> None:
    folder = _with_int8(tmp_path / "b", default=True)
    card = json.loads((folder / "model.json").read_text())
    card["int8"].update(edit)
    (folder / "model.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match=message):
        load_bundle(folder)


@pytest.mark.parametrize(("cores", "threads"), [(1, 1), (2, 2), (3, 3), (4, 3), (6, 5), (8, 7), (12, 8), (64, 8)])
def test_onnx_threads_leave_a_core_for_capture_loop_and_sender_from_four_cores(cores: int, threads: int) -> None:
    assert intra_op_threads(cores) == threads
