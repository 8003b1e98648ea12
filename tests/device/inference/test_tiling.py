"""`resize: tile` on the device: tiles merge to the whole-frame answer, big frames are shrunk to the
tile budget and say so, and bundles from before tiling detect exactly as they always did."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.app import create_app
from device.config import DeviceConfig
from device.inference.detector import Detector, load_detector
from device.pipeline import ModelSlot, Pipeline, PipelineOptions
from device.sources.capture import Frame
from tests.device.bundles import card, peak_graph, write_bundle
from tests.device.runtime_helpers import facade, start_runtime, wait_for

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "device" / "models" / "demo"


def _tiled_peaks(folder: Path, size: tuple[int, int], overlap: int, max_tiles: int = 16) -> Path:
    """The test peak detector on `size` (width, height) inputs, as a `resize: tile` bundle at scale 1.

    Its threshold keeps only blob centres (score 1), not the faint halo peaks around them.
    """
    width, height = size
    spec = {"width": width, "height": height, "layout": "NHWC", "color": "RGB", "resize": "tile",
            "scale": 1.0, "tile_overlap": overlap, "max_tiles": max_tiles}
    model_card = card("peaks", ["cell", "crystal", "debris"], width, height, input=spec, score_threshold=0.95)
    return write_bundle(folder, peak_graph(width, height), model_card)


def _discs(width: int, height: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A clean frame of bright gaussian blobs at least 30 px apart on grey, and their centres."""
    rng = np.random.default_rng(seed)
    centres: list[tuple[int, int]] = []
    while len(centres) < n:
        c = (int(rng.integers(12, width - 12)), int(rng.integers(12, height - 12)))
        if all(np.hypot(c[0] - x, c[1] - y) >= 30 for x, y in centres):
            centres.append(c)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    light = np.zeros((height, width), np.float32)
    for x, y in centres:
        light = np.maximum(light, np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 3.0**2)))
    grey = np.clip(90 + 120 * light, 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2), np.asarray(centres, np.float32)


def test_tiles_merge_to_the_whole_frame_answer(tmp_path: Path) -> None:
    image, centres = _discs(640, 480, 60, seed=3)
    whole = load_detector(_tiled_peaks(tmp_path / "whole", (640, 480), 0), "onnx", tmp_path)
    tiled = load_detector(_tiled_peaks(tmp_path / "tiled", (256, 256), 96), "onnx", tmp_path)
    a, b = whole.detect(image), tiled.detect(image)
    assert tiled.tiling_info()["tiles"] == 4 * 3 and whole.tiling_info()["tiles"] == 1
    assert len(a) == len(centres)  # every blob, once
    order_a, order_b = np.lexsort(a.xyxy.T[:2]), np.lexsort(b.xyxy.T[:2])
    assert len(a) == len(b)
    np.testing.assert_allclose(a.xyxy[order_a], b.xyxy[order_b], atol=1e-3)
    np.testing.assert_allclose(a.scores[order_a], b.scores[order_b], atol=1e-5)


def test_a_frame_smaller_than_the_input_is_padded_not_stretched(tmp_path: Path) -> None:
    image, centres = _discs(200, 150, 8, seed=4)
    detector = load_detector(_tiled_peaks(tmp_path / "b", (256, 256), 64), "onnx", tmp_path)
    found = detector.detect(image)
    found_centres = (found.xyxy[:, :2] + found.xyxy[:, 2:]) / 2
    nearest = np.abs(found_centres[None, :, :] - centres[:, None, :]).sum(axis=2).min(axis=1)
    assert nearest.max() <= 1.0  # each disc found where it is: no stretch from 200x150 to 256x256
    np.testing.assert_allclose(found.xyxy[:, 2] - found.xyxy[:, 0], 16.0, atol=1e-3)


def test_frames_over_the_tile_budget_are_shrunk_and_the_device_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    detector = load_detector(_tiled_peaks(tmp_path / "c", (256, 256), 64, max_tiles=4), "onnx", tmp_path)
    image, _ = _discs(1388, 1040, 40, seed=5)
    with caplog.at_level(logging.INFO, logger="device.inference.detector"):
        found = detector.detect(image)
        detector.detect(image)
    info = detector.tiling_info()
    assert info["shrunk"] is True and info["tiles"] <= 4 and float(info["frame_scale"]) < 1.0  # type: ignore[arg-type]
    assert [r.levelname for r in caplog.records if "1388x1040" in r.getMessage()] == ["WARNING"]  # once per frame size
    assert len(found) and found.xyxy[:, 2].max() <= 1388 and found.xyxy[:, 3].max() <= 1040


def test_healthz_tells_how_frames_are_tiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPEHIVE_STREAM_TOKEN", "t0ken")
    bundle = _tiled_peaks(tmp_path / "d", (256, 256), 64)
    config = DeviceConfig.model_validate({"source": "synthetic://?seed=4&width=640&height=480&fps=30", "model": str(bundle),
                                          "data_dir": str(tmp_path), "port": 0})
    runtime, thread = start_runtime(config)
    try:
        assert wait_for(lambda: runtime.parts.publisher.processed >= 2)
        tiling = create_app(config, facade(runtime), with_panel=False).test_client().get("/healthz", headers={"Authorization": "Bearer t0ken"}).get_json()["model"]["tiling"]
    finally:
        runtime.stop()
        thread.join(timeout=5)
        runtime.shutdown()
    assert tiling["resize"] == "tile" and tiling["frame"] == "640x480" and tiling["tiles"] == 9
    assert tiling["shrunk"] is False and tiling["inference_ms"] > 0


def _old_stretch_pipeline(bundle: Path, image_bgr: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """What the device did before tiling, written out independently: stretch, run, threshold, scale
    back. The resize is the trainer's (area when a side shrinks, bilinear when only enlarging):
    the device has enlarged with it since 2026-12-03 (tests/trainer/test_same_resize.py)."""
    import json

    import onnxruntime as ort

    spec = json.loads((bundle / "model.json").read_text())
    w, h = spec["input"]["width"], spec["input"]["height"]
    shrinks = w < image_bgr.shape[1] or h < image_bgr.shape[0]
    rgb = cv2.resize(image_bgr, (w, h), interpolation=cv2.INTER_AREA if shrinks else cv2.INTER_LINEAR)[:, :, ::-1]
    norm = spec["normalization"]
    x = (rgb.astype(np.float32) * np.float32(norm["scale"]) - np.asarray(norm["mean"], np.float32)) / np.asarray(norm["std"], np.float32)
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    boxes, scores, _ = session.run(None, {session.get_inputs()[0].name: x[None]})
    keep = scores[0] >= threshold
    sx, sy = image_bgr.shape[1] / w, image_bgr.shape[0] / h
    return boxes[0][keep] * np.array([sx, sy, sx, sy], np.float32), scores[0][keep]


@pytest.mark.skipif(not (DEMO / "model.json").is_file(), reason="the demo bundle is not committed")
def test_an_old_stretch_bundle_detects_exactly_as_before(tmp_path: Path) -> None:
    import json
    import shutil

    old = shutil.copytree(DEMO, tmp_path / "demo", ignore=shutil.ignore_patterns("model.int8.onnx"))  # float, as before
    card = json.loads((old / "model.json").read_text())
    card.pop("int8", None)
    (old / "model.json").write_text(json.dumps(card))
    detector = load_detector(old, "onnx", tmp_path)
    assert detector.tile_policy is None and detector.tiling_info()["resize"] == "stretch"
    image, _ = _discs(640, 480, 25, seed=6)
    image = cv2.GaussianBlur(image, (0, 0), 1.2)
    found = detector.detect(image)
    boxes, scores = _old_stretch_pipeline(DEMO, image, detector.threshold)
    order = np.argsort(-scores, kind="stable")
    assert len(found) == len(boxes) > 0
    np.testing.assert_allclose(found.scores, scores[order], atol=1e-5)
    np.testing.assert_allclose(found.xyxy, np.clip(boxes[order], 0, [640, 480, 640, 480]), atol=1e-2)


class RoutingBackend:
    """A real local backend that says, like the hive's, where each run went: `remote:<caller's
    thread>` except for the runs listed in `fallback_runs`."""

    def __init__(self, inner: object, fallback_runs: set[int] | None = None) -> None:
        self.inner, self.fallback_runs, self.runs = inner, fallback_runs or set(), 0
        self.name = "triton"
        self.last_route = "local"
        self.last_fields: dict[str, float | int] = {}

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        import threading

        self.runs += 1
        self.last_route = "fallback" if self.runs in self.fallback_runs else f"remote:{threading.current_thread().name}"
        self.last_fields = {"bytes_sent": 10}
        return self.inner.run(tensor)  # type: ignore[attr-defined,no-any-return]


def _routed(tmp_path: Path, fallback_runs: set[int] | None = None) -> Detector:
    bundle = _tiled_peaks(tmp_path / "routed", (256, 256), 64)
    local = load_detector(bundle, "onnx", tmp_path)
    return Detector(local.bundle, RoutingBackend(local.backend, fallback_runs))  # type: ignore[arg-type]


def test_a_tiled_frame_reports_where_its_tiles_ran(tmp_path: Path) -> None:
    """Defect: the tiled path never set the route, so a tiled bundle on the hive was recorded as `local`."""
    frame, _ = _discs(640, 480, 12, seed=3)
    remote = _routed(tmp_path)
    run = remote.analyse(frame)
    tiles = remote.tiling_info()["tiles"]
    assert isinstance(tiles, int) and tiles > 1
    assert run.route == "remote:MainThread" and run.fields["bytes_sent"] == 10 * tiles
    one_fell_back = _routed(tmp_path, fallback_runs={2})
    analysis = Pipeline(PipelineOptions(), _slot(one_fell_back)).analyse(Frame(frame, 0, 0.0, 0.0))
    assert analysis.inference == "fallback" and analysis.detections is not None and len(analysis.detections) == len(run.detections)


def test_a_panel_thread_never_changes_what_the_loop_records(tmp_path: Path) -> None:
    """Defect: a web thread's detect() (pre-annotation) overwrote the route and timing the loop read
    back after its own call. Now each call returns its own."""
    import threading

    frame, _ = _discs(640, 480, 6, seed=4)
    detector = _routed(tmp_path)
    seen: dict[str, set[str]] = {}

    def caller() -> None:
        name = threading.current_thread().name
        seen[name] = {detector.analyse(frame).route for _ in range(15)}

    threads = [threading.Thread(target=caller, name=f"t{i}") for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert seen == {f"t{i}": {f"remote:t{i}"} for i in range(3)}


def _slot(detector: Detector) -> ModelSlot:
    slot = ModelSlot(lambda path: detector)
    slot.load(Path("unused"))
    return slot
