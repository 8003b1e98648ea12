import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from device.inference.detector import load_detector
from device.models.bundle import BundleError
from device.sources.synthetic import SyntheticMicroscope
from tests.device.bundles import yolov8_bundle


def _centres_found(truth_xyxy: np.ndarray, found_xyxy: np.ndarray) -> float:
    cx = (truth_xyxy[:, 0] + truth_xyxy[:, 2]) / 2
    cy = (truth_xyxy[:, 1] + truth_xyxy[:, 3]) / 2
    inside = ((found_xyxy[None, :, 0] <= cx[:, None]) & (cx[:, None] <= found_xyxy[None, :, 2])
              & (found_xyxy[None, :, 1] <= cy[:, None]) & (cy[:, None] <= found_xyxy[None, :, 3]))
    return float(inside.any(axis=1).mean())


def test_peak_bundle_finds_synthetic_objects_in_frame_pixels(peak_bundle: Path, tmp_path: Path) -> None:
    detector = load_detector(peak_bundle, "onnx", tmp_path)
    frame = SyntheticMicroscope(seed=11, density=25, width=640, height=480).read()
    run = detector.analyse(frame.image)
    found = run.detections
    assert 0.5 * len(frame.truth) <= len(found) <= 3 * len(frame.truth)
    assert _centres_found(frame.truth.xyxy, found.xyxy) >= 0.6
    assert found.xyxy[:, 2].max() <= 640 and found.xyxy[:, 3].max() <= 480
    assert run.inference_ms > 0 and run.route == "local" and detector.backend_name.startswith("onnx/")
    assert len(detector.detect(frame.image)) == len(found)  # the panel's call: the same boxes


def test_16bit_grey_frame_is_accepted(peak_bundle: Path, tmp_path: Path) -> None:
    detector = load_detector(peak_bundle, "onnx", tmp_path)
    grey = SyntheticMicroscope(seed=2, width=320, height=240).read().image[:, :, 0].astype(np.uint16) * 16
    assert len(detector.detect(grey)) == len(detector.detect(np.repeat((grey >> 4).astype(np.uint8)[:, :, None], 3, 2)))


def test_opencv_and_onnx_backends_agree(peak_bundle: Path, tmp_path: Path) -> None:
    frame = SyntheticMicroscope(seed=5, width=320, height=240).read().image
    a = load_detector(peak_bundle, "onnx", tmp_path).detect(frame)
    b = load_detector(peak_bundle, "opencv", tmp_path).detect(frame)
    assert len(a) == len(b) and np.allclose(a.xyxy, b.xyxy, atol=0.5) and np.allclose(a.scores, b.scores, atol=1e-3)


def test_zipped_bundle_loads(peak_bundle: Path, tmp_path: Path) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("model.json", "model.onnx"):
            zf.write(peak_bundle / name, name)
    assert load_detector(archive, "onnx", tmp_path / "cache").card.name == "peaks"


def _copy(bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(bundle, target)
    return target


def _edit_card(bundle: Path, **changes: object) -> None:
    card = json.loads((bundle / "model.json").read_text())
    card.update(changes)
    (bundle / "model.json").write_text(json.dumps(card))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: (b / "model.onnx").write_bytes(b"\x08\x07garbage"), "cannot load the model"),
        (lambda b: (b / "model.onnx").unlink(), "model.onnx is missing"),
        (lambda b: (b / "model.json").write_text("{not json"), "model.json is invalid"),
        (lambda b: _edit_card(b, input={"width": 256, "height": 256}), "model.onnx expects"),
        (lambda b: _edit_card(b, output={"format": "yolov5"}), "outputs do not match"),
        (lambda b: _edit_card(b, format_version=9), "update the device software"),
        # a newer card carries fields this device has never heard of: still "update", not "extra inputs"
        (lambda b: _edit_card(b, format_version=5, future_field={"x": 1}), "update the device software"),
        (lambda b: _edit_card(b, input={"width": 320, "height": 240, "name": "pixels"}), "input.name 'pixels'"),
    ],
)
def test_broken_bundles_are_rejected_with_a_reason(peak_bundle: Path, tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    bundle = _copy(peak_bundle, tmp_path)
    damage(bundle)
    with pytest.raises(BundleError, match=message):
        load_detector(bundle, "onnx", tmp_path)


def test_missing_bundle_and_unknown_backend(peak_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such model bundle"):
        load_detector(tmp_path / "absent", "onnx", tmp_path)
    with pytest.raises(BundleError, match="unknown backend"):
        load_detector(peak_bundle, "coreml", tmp_path)


def test_user_yolov8_model_is_decoded_and_scaled_to_the_frame(tmp_path: Path) -> None:
    # 64x64 letterboxed network; a 128x64 frame is scaled by 0.5 and padded 16 px top and bottom
    head = np.zeros((1, 6, 3), np.float32)
    head[0, :, 0] = [32, 32, 16, 8, 0.9, 0.1]  # class 0 centred
    head[0, :, 1] = [33, 32, 16, 8, 0.8, 0.1]  # duplicate of it (suppressed)
    head[0, :, 2] = [10, 20, 4, 4, 0.1, 0.6]  # class 1
    bundle = yolov8_bundle(tmp_path / "yolo", head, ["bead", "bubble"])
    detector = load_detector(bundle, "auto", tmp_path)
    found = detector.detect(np.zeros((64, 128, 3), np.uint8))
    assert detector.card.output.format == "yolov8"
    assert found.class_ids.tolist() == [0, 1]
    assert found.xyxy.tolist() == [[48, 24, 80, 40], [16, 4, 24, 12]]


@pytest.mark.tensorrt
def test_tensorrt_backend_matches_onnx(peak_bundle: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorrt")
    from device.inference.tensorrt_backend import tensorrt_available

    if not tensorrt_available():
        pytest.skip("TensorRT is installed but no CUDA GPU answers")
    frame = SyntheticMicroscope(seed=5, width=320, height=240).read().image
    reference = load_detector(peak_bundle, "onnx", tmp_path).detect(frame)
    trt = load_detector(peak_bundle, "tensorrt", tmp_path)
    assert list((tmp_path / "engines").glob("*.engine")), "the built engine is cached in the data dir"
    assert len(trt.detect(frame)) == pytest.approx(len(reference), abs=2)
