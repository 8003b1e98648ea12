"""Test helpers for the panel: a tiny real ONNX bundle and a synthetic-microscope runtime."""

from __future__ import annotations

import json
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from device import __version__
from device.config import DeviceConfig
from device.detections import Detections
from device.experiments.recorder import ExperimentRecorder
from device.models.bundle import ModelCard
from device.sources.synthetic import CLASSES, SyntheticMicroscope
from device.tracking.experiment import TrackLog
from device.tracking.settings import TrackingSettings
from device.tracking.stage import TrackingStage
from device.web_protocol import LatestFrame, NoModel


def tiny_onnx(path: Path, size: int = 32) -> None:
    """A real ONNX graph with scopehive-v1 outputs: one box whose score is the input's mean."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Reshape", ["mean", "shape11"], ["scores"]),
        helper.make_node("Identity", ["box_const"], ["boxes"]),
        helper.make_node("Identity", ["class_const"], ["classes"]),
    ]
    inits = [
        helper.make_tensor("shape11", TensorProto.INT64, [2], [1, 1]),
        helper.make_tensor("box_const", TensorProto.FLOAT, [1, 1, 4], [4.0, 4.0, size / 2, size / 2]),
        helper.make_tensor("class_const", TensorProto.FLOAT, [1, 1], [0.0]),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, size, size, 3])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 1, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1]),
         helper.make_tensor_value_info("classes", TensorProto.FLOAT, [1, 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


def card(name: str = "tiny", version: str = "1", classes: list[str] | None = None, size: int = 32) -> dict[str, Any]:
    return {
        "format": "scopehive-model", "format_version": 1, "name": name, "version": version,
        "classes": list(classes or CLASSES), "input": {"width": size, "height": size, "layout": "NHWC"},
        "score_threshold": 0.1, "created": datetime.now(timezone.utc).isoformat(), "metrics": {"map50": 0.5},
    }


def bundle_zip(path: Path, name: str = "tiny", version: str = "1", classes: list[str] | None = None) -> Path:
    """A valid bundle zip (model.json + model.onnx) for the given classes."""
    onnx_path = path.with_suffix(".onnx")
    tiny_onnx(onnx_path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.json", json.dumps(card(name, version, classes)))
        archive.write(onnx_path, "model.onnx")
    onnx_path.unlink()
    return path


class SyntheticRuntime:
    """The DeviceRuntime protocol over the synthetic microscope, with real model switching.

    Frames are made on demand (no thread), so tests are deterministic; models are loaded, checked
    and warmed by the device's own `load_detector`, so a bad bundle fails exactly as on a device.
    """

    def __init__(self, cache_dir: Path, width: int = 320, height: int = 240) -> None:
        self.scope = SyntheticMicroscope(seed=5, width=width, height=height, drift=2.0)
        self.cache_dir = cache_dir
        self.detector: Any = None
        self.captured: list[np.ndarray] = []

    def latest(self) -> LatestFrame | None:
        frame = self.scope.read()
        self.captured.append(frame.image)
        return LatestFrame(frame.image, frame.truth, time.time(), frame.index, CLASSES, {"count": len(frame.truth)})

    def annotated_jpeg(self, quality: int = 80) -> bytes | None:
        import cv2

        frame = self.scope.render()
        small = cv2.resize(frame.image, (frame.image.shape[1] // 2, frame.image.shape[0] // 2))
        return bytes(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())

    def live_stats(self) -> dict[str, Any]:
        return {"fps": 10.0, "count": 3, "counts": {"cell": 2, "crystal": 1, "debris": 0}}

    def history(self, seconds: float) -> list[dict[str, Any]]:
        now = time.time()
        return [{"time": now - seconds + i, "fps": 10.0 + i % 3, "count": i % 5, "latency_ms": 20.0} for i in range(30)]

    def health(self) -> dict[str, Any]:
        return {"ok": True, "camera": {"state": "ok"}, "model": {"loaded": self.detector is not None}, "outbox": {}}

    def model_card(self) -> ModelCard | None:
        return self.detector.card if self.detector is not None else None

    def switch_model(self, bundle_path: Path) -> ModelCard:
        from device.inference.detector import load_detector

        self.detector = load_detector(bundle_path, "onnx", self.cache_dir)
        card: ModelCard = self.detector.card
        return card

    def detect(self, image: np.ndarray) -> Detections:
        if self.detector is None:
            raise NoModel("no model is loaded on this test device")
        return self.detector.detect(image)

    def set_class_colours(self, colours: dict[str, str]) -> None:
        self.colours = dict(colours)

    def feed_models(self) -> list[dict[str, Any]]:
        return []  # one model only: the real several-models path is tested with a Runtime

    def add_model(self, name: str, bundle_path: Path, every: int = 1, overlay: bool = True) -> ModelCard:
        raise ValueError("this test runtime runs one model")

    def remove_model(self, name: str) -> None:
        raise KeyError(name)

    def set_overlay(self, name: str, shown: bool) -> None:
        raise KeyError(name)

    # experiments and tracking: none unless a test gives them (the attributes below)
    recorder: ExperimentRecorder | None = None
    stage: TrackingStage | None = None
    config: DeviceConfig | None = None

    def experiments(self) -> ExperimentRecorder | None:
        return self.recorder

    def tracking(self) -> TrackingStage | None:
        return self.stage

    def track_log(self) -> TrackLog | None:
        return None

    def tracking_settings(self) -> TrackingSettings:
        return TrackingSettings()

    def provenance(self) -> dict[str, Any]:
        out: dict[str, Any] = {"software": __version__, "source": self.config.source if self.config else "",
                               "quality": self.config.quality.model_dump() if self.config else {}}
        if self.detector is not None:
            card = self.detector.card
            out["model"] = {"name": card.name, "version": card.version, "sha256": self.detector.bundle.fingerprint(),
                            "metrics": card.metrics, "score_threshold": self.detector.threshold, "classes": card.classes}
        return out
