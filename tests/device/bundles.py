"""Model bundles built in tests without TensorFlow: small real ONNX graphs made with onnx.helper.

`peak_detector_bundle` is a classical blob detector written as an ONNX graph that speaks
scopehive-v1 (boxes, scores, classes decoded inside the graph), so the device can be tested end to
end before (and independently of) the trainer's demo model. `yolov8_bundle` is a user-style YOLOv8
head with fixed outputs, to test device-side decoding and NMS.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def _const(name: str, value: Any, dtype: Any = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype), name)


def peak_graph(width: int, height: int, top_k: int = 200, radius: float = 8.0) -> onnx.ModelProto:
    """NHWC float image in [0, 1] -> objects that differ from the local background, as fixed-size boxes."""
    n = helper.make_node
    nodes = [
        n("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        n("ReduceMean", ["nchw"], ["gray"], axes=[1], keepdims=1),
        n("AveragePool", ["gray"], ["local"], kernel_shape=[5, 5], pads=[2, 2, 2, 2], count_include_pad=0),
        n("AveragePool", ["gray"], ["background"], kernel_shape=[31, 31], pads=[15, 15, 15, 15], count_include_pad=0),
        n("Sub", ["background", "local"], ["diff"]),
        n("Abs", ["diff"], ["heat"]),
        n("MaxPool", ["heat"], ["pooled"], kernel_shape=[9, 9], pads=[4, 4, 4, 4]),
        n("Equal", ["heat", "pooled"], ["is_peak"]),
        n("Cast", ["is_peak"], ["peak_f"], to=TensorProto.FLOAT),
        n("Mul", ["heat", "peak_f"], ["peaks"]),
        n("Reshape", ["peaks", "flat_shape"], ["flat"]),
        n("TopK", ["flat", "k"], ["values", "indices"], axis=1),
        n("Div", ["indices", "w_int"], ["row"]),
        n("Mod", ["indices", "w_int"], ["col"]),
        n("Cast", ["row"], ["y"], to=TensorProto.FLOAT),
        n("Cast", ["col"], ["x"], to=TensorProto.FLOAT),
        n("Sub", ["x", "r"], ["x1"]), n("Sub", ["y", "r"], ["y1"]),
        n("Add", ["x", "r"], ["x2"]), n("Add", ["y", "r"], ["y2"]),
        *[n("Unsqueeze", [c, "last_axis"], [f"{c}_u"]) for c in ("x1", "y1", "x2", "y2")],
        n("Concat", ["x1_u", "y1_u", "x2_u", "y2_u"], ["boxes"], axis=2),
        n("Mul", ["values", "gain"], ["raw_scores"]),
        n("Min", ["raw_scores", "one"], ["scores"]),
        n("Mul", ["indices", "zero_int"], ["classes"]),
    ]
    inits = [
        _const("flat_shape", [1, -1], np.int64), _const("k", [top_k], np.int64),
        _const("w_int", width, np.int64), _const("r", radius), _const("last_axis", [2], np.int64),
        _const("gain", 12.0), _const("one", 1.0), _const("zero_int", 0, np.int64),
    ]
    graph = helper.make_graph(
        nodes, "scopehive_peaks",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, height, width, 3])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, top_k, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, top_k]),
         helper.make_tensor_value_info("classes", TensorProto.INT64, [1, top_k])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def card(name: str, classes: list[str], width: int, height: int, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "format": "scopehive-model", "format_version": 1, "name": name, "version": "1.0.0",
        "classes": classes,
        "input": {"width": width, "height": height, "layout": "NHWC", "color": "RGB", "resize": "stretch"},
        "normalization": {"scale": 1 / 255, "mean": [0, 0, 0], "std": [1, 1, 1]},
        "output": {"format": "scopehive-v1", "max_detections": 300, "nms_iou": 0.5},
        "score_threshold": 0.3, "created": datetime.now(timezone.utc).isoformat(),
    }
    base.update(extra)
    return base


def write_bundle(folder: Path, model: onnx.ModelProto, model_card: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "model.onnx")
    (folder / "model.json").write_text(json.dumps(model_card, indent=1))
    return folder


def peak_detector_bundle(folder: Path, width: int = 320, height: int = 240, version: str = "1.0.0", name: str = "peaks") -> Path:
    classes = ["cell", "crystal", "debris"]
    return write_bundle(folder, peak_graph(width, height), card(name, classes, width, height, version=version))


def yolov8_graph(head: np.ndarray, size: int = 64) -> onnx.ModelProto:
    """NCHW image -> a fixed YOLOv8 head `head` [1, 4 + C, A] (plus 0 x the image mean, so the graph uses its input)."""
    n = helper.make_node
    nodes = [
        n("ReduceMean", ["images"], ["mean"], axes=[0, 1, 2, 3], keepdims=0),
        n("Mul", ["mean", "zero"], ["nothing"]),
        n("Add", ["head", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "yolov8_fixed",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(head.shape))],
        [_const("head", head), _const("zero", 0.0)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def yolov8_bundle(folder: Path, head: np.ndarray, classes: list[str], size: int = 64) -> Path:
    model_card = card("lab-yolo", classes, size, size,
                      input={"width": size, "height": size, "layout": "NCHW", "color": "RGB", "resize": "letterbox"},
                      output={"format": "yolov8", "max_detections": 100, "nms_iou": 0.5}, score_threshold=0.25)
    return write_bundle(folder, yolov8_graph(head, size), model_card)


def malformed_peaks_bundle(folder: Path, boxes: np.ndarray, width: int = 320, height: int = 240) -> Path:
    """A bundle that claims to be peaks 1.0.0 (same name, version, output names) but answers with
    fixed, broken outputs: what a hive server with the wrong or a corrupted model would send."""
    n = helper.make_node
    k = boxes.shape[1]
    nodes = [
        n("ReduceMean", ["image"], ["mean"], axes=[0, 1, 2, 3], keepdims=0),
        n("Mul", ["mean", "zero"], ["nothing"]),
        n("Add", ["fixed_boxes", "nothing"], ["boxes"]),
        n("Add", ["fixed_scores", "nothing"], ["scores"]),
        n("Identity", ["fixed_classes"], ["classes"]),
    ]
    graph = helper.make_graph(
        nodes, "malformed_peaks",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, height, width, 3])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, list(boxes.shape)),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, k]),
         helper.make_tensor_value_info("classes", TensorProto.INT64, [1, k])],
        [_const("fixed_boxes", boxes), _const("fixed_scores", np.ones((1, k))), _const("fixed_classes", np.zeros((1, k)), np.int64),
         _const("zero", 0.0)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return write_bundle(folder, model, card("peaks", ["cell", "crystal", "debris"], width, height, version="1.0.0"))
