"""model.onnx's inputs and outputs read from the protobuf alone agree with the onnx package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from device.inference.onnx_graph import GraphError, read_graph_io
from tests.device.bundles import peak_detector_bundle, yolov8_bundle


def _onnx_says(path: Path) -> tuple[list[tuple[str, int, tuple[int | None, ...]]], list[tuple[str, int, tuple[int | None, ...]]]]:
    graph = onnx.load(str(path)).graph
    inits = {i.name for i in graph.initializer}

    def info(v: onnx.ValueInfoProto) -> tuple[str, int, tuple[int | None, ...]]:
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in v.type.tensor_type.shape.dim)
        return v.name, v.type.tensor_type.elem_type, dims

    return [info(v) for v in graph.input if v.name not in inits], [info(v) for v in graph.output]


def _io(path: Path) -> tuple[list[tuple[str, int, tuple[int | None, ...]]], list[tuple[str, int, tuple[int | None, ...]]]]:
    io = read_graph_io(path)
    return ([(t.name, t.elem_type, t.shape or ()) for t in io.inputs], [(t.name, t.elem_type, t.shape or ()) for t in io.outputs])


def test_the_peak_and_yolo_graphs(tmp_path: Path) -> None:
    peaks = peak_detector_bundle(tmp_path / "p") / "model.onnx"
    yolo = yolov8_bundle(tmp_path / "y", np.zeros((1, 7, 10), np.float32), ["a", "b", "c"]) / "model.onnx"
    for path in (peaks, yolo):
        assert _io(path) == _onnx_says(path)
    assert _io(peaks)[0] == [("image", TensorProto.FLOAT, (1, 240, 320, 3))]
    assert [o[0] for o in _io(peaks)[1]] == ["boxes", "scores", "classes"]


def test_open_dimensions_and_initializers_listed_as_inputs(tmp_path: Path) -> None:
    """IR 3 graphs list their weights as inputs too; a named dimension is open (None)."""
    weight = onnx.numpy_helper.from_array(np.ones((1,), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3]), helper.make_tensor_value_info("w", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], [weight])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), path)
    io = read_graph_io(path)
    assert [(t.name, t.shape) for t in io.inputs] == [("x", (None, 3))]
    assert [(t.name, t.shape) for t in io.outputs] == [("y", (None, 3))]


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all", b"\x3a\xff\xff\xff\xff\x0f"], ids=["empty", "text", "truncated"])
def test_a_file_that_is_not_a_model_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(GraphError):
        read_graph_io(path)
