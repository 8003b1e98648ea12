"""`python -m trainer serve`: names devices agree on, the Triton model repository for the stock
tritonserver (parsed by Triton's own ModelConfig schema), JPEG decoding, bad bundles."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.hive.names import triton_model_name as device_name
from device.inference.preprocess import normalize
from device.models.bundle import load_bundle
from tests.device.bundles import peak_detector_bundle, yolov8_bundle
from tests.device.hive.server import hive_python
from trainer.hive.jpeg_model import JpegError, jpeg_to_tensor
from trainer.hive.names import triton_model_name as server_name
from trainer.hive.repository import write_repository

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("name", "version"), [("peaks", "1.0.0"), ("synthetic-cells", "2026.11.21-232725"), ("a b/c", "1+x")])
def test_device_and_server_name_a_bundle_alike(tmp_path: Path, name: str, version: str) -> None:
    card = load_bundle(peak_detector_bundle(tmp_path / "b", name=name, version=version)).card
    for transport in ("tensor", "jpeg"):
        assert device_name(card, transport) == server_name(name, version, transport)


def test_jpeg_decodes_to_the_tensor_the_device_would_send() -> None:
    card = load_bundle(ROOT / "device" / "models" / "demo").card
    image = np.random.default_rng(1).integers(0, 255, (card.input.height, card.input.width, 3), np.uint8)
    ok, data = cv2.imencode(".png", image)  # lossless stand-in to compare exactly
    ok, jpeg = cv2.imencode(".jpg", cv2.imdecode(data, cv2.IMREAD_COLOR), [cv2.IMWRITE_JPEG_QUALITY, 100])
    spec = {"width": card.input.width, "height": card.input.height, "layout": card.input.layout, "color": card.input.color,
            "scale": card.normalization.scale, "mean": list(card.normalization.mean), "std": list(card.normalization.std)}
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    np.testing.assert_allclose(jpeg_to_tensor(jpeg.tobytes(), spec)[None], normalize(decoded, card.input, card.normalization), atol=1e-5)
    with pytest.raises(JpegError, match="not a decodable JPEG"):
        jpeg_to_tensor(b"not a jpeg", spec)
    small = cv2.imencode(".jpg", image[:10, :10])[1].tobytes()
    with pytest.raises(JpegError, match="the model takes 960x704"):
        jpeg_to_tensor(small, spec)


def test_repository_configs_follow_tritons_schema(tmp_path: Path) -> None:
    peaks = peak_detector_bundle(tmp_path / "peaks")  # fixed batch 1
    yolo = yolov8_bundle(tmp_path / "yolo", np.zeros((1, 6, 84), np.float32), ["cell", "debris"])
    demo = ROOT / "device" / "models" / "demo"  # dynamic batch
    names = write_repository([peaks, yolo, demo], tmp_path / "repo", tensorrt=True)
    assert "peaks.1.0.0" in names and "peaks.1.0.0_jpeg" in names and "peaks.1.0.0_decode" in names
    assert (tmp_path / "repo" / "peaks.1.0.0" / "1" / "model.onnx").read_bytes() == (peaks / "model.onnx").read_bytes()
    assert (tmp_path / "repo" / "peaks.1.0.0_decode" / "1" / "model.py").is_file()
    check = (
        "import sys, pathlib\n"
        "from google.protobuf import text_format\n"
        "from tritonclient.grpc import model_config_pb2\n"
        "for path in sorted(pathlib.Path(sys.argv[1]).glob('*/config.pbtxt')):\n"
        "    config = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())\n"
        "    print(path.parent.name, config.name, config.max_batch_size, config.platform or config.backend)\n"
    )
    done = subprocess.run([str(hive_python()), "-c", check, str(tmp_path / "repo")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()}
    assert len(rows) == 9 and all(folder == row[0] for folder, row in rows.items())
    assert rows["peaks.1.0.0"][1:] == ["0", "onnxruntime"] and rows["peaks.1.0.0_jpeg"][1:] == ["0", "ensemble"]
    demo_name = "synthetic-cells.2026.11.21-232725"
    assert rows[demo_name][1:] == ["8", "onnxruntime"] and rows[demo_name + "_decode"][1:] == ["8", "python"]


def test_serve_refuses_a_bad_bundle_at_once(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "trainer", "serve", str(tmp_path / "missing"), "--repository", str(tmp_path / "r")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "error:" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()


def test_a_cpu_hive_server_serves_the_float_model_padded_to_its_block_and_answers_as_exported(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import onnxruntime as ort

    from trainer.hive.models import load_served_model

    monkeypatch.setattr("device.inference.cpu_layout.conv_block", lambda: 16)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    demo = Path(__file__).resolve().parents[2] / "device" / "models" / "demo"
    served = load_served_model(demo)
    assert "padded to multiples of 16" in served.layout and "NCHW" not in served.layout  # devices send NHWC
    assert list((tmp_path / "scopehive-layouts").glob("*_c16.onnx"))
    x = np.random.default_rng(4).uniform(0, 1, (2, 704, 960, 3)).astype(np.float32)  # a batch of two
    exported = ort.InferenceSession(str(demo / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = dict(zip([o.name for o in exported.get_outputs()], exported.run(None, {served.input.name: x}), strict=True))
    for name, value in served.run(x).items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-3, atol=1e-3)
