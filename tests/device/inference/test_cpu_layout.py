"""device/inference/cpu_layout.py: narrow channel groups padded to the CPU's block, the input taken as NCHW, nothing else changed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from device.inference import cpu_layout
from device.inference.cpu_layout import conv_block, laid_out, nchw_input, pad_channels
from device.inference.detector import Detector
from device.inference.onnx_backend import OnnxBackend
from device.models.bundle import load_bundle

DEMO = Path(__file__).resolve().parents[3] / "device" / "models" / "demo"
RNG = np.random.default_rng(7)


def _conv(name: str, src: str, dst: str, cin: int, cout: int, inits: list, k: int = 1, group: int = 1) -> onnx.NodeProto:
    inits.append(numpy_helper.from_array(RNG.normal(0, 0.3, (cout, cin // group, k, k)).astype(np.float32), f"{name}_w"))
    inits.append(numpy_helper.from_array(RNG.normal(0, 0.1, cout).astype(np.float32), f"{name}_b"))
    return helper.make_node("Conv", [src, f"{name}_w", f"{name}_b"], [dst], name=name, pads=[k // 2] * 4, group=group)


def _graph(narrow_feeds_relu: bool = False, depthwise: bool = False) -> onnx.ModelProto:
    """16 -> [8 -> residual 8 + 8] -> 24 -> 5: MobileNetV2's linear bottleneck with a residual."""
    inits: list = []
    nodes = [
        _conv("stem", "x", "s", 3, 16, inits, k=3),
        helper.make_node("Relu", ["s"], ["s_r"]),
        _conv("project_a", "s_r", "a", 16, 8, inits),
        _conv("expand", "a", "e", 8, 32, inits),
        helper.make_node("Relu", ["e"], ["e_r"]),
        _conv("project_b", "e_r", "b", 32, 8, inits),
        helper.make_node("Add", ["a", "b"], ["ab"]),
        _conv("wide", "ab", "w", 8, 24, inits, k=3),
    ]
    if depthwise:  # a grouped convolution reads the 24 channels: padding them would change its groups
        nodes += [_conv("depthwise", "w", "d", 24, 24, inits, k=3, group=24), _conv("head", "d", "y", 24, 5, inits)]
    else:
        nodes.append(_conv("head", "w", "y", 24, 5, inits))
    if narrow_feeds_relu:
        nodes.append(helper.make_node("Relu", ["ab"], ["ab_r"]))
        nodes.append(_conv("side", "ab_r", "z", 8, 16, inits))
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 32, 48])]
    if narrow_feeds_relu:
        outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 16, 32, 48]))
    graph = helper.make_graph(nodes, "bottleneck", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 48])],
                              outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def _weights(model: onnx.ModelProto, name: str) -> np.ndarray:
    return next(numpy_helper.to_array(i) for i in model.graph.initializer if i.name == name)


def test_the_block_follows_the_cpu() -> None:
    assert conv_block({"sse2", "avx2", "avx512f", "avx512bw"}, "x86_64") == 16
    assert conv_block({"sse2", "avx", "avx2", "fma"}, "x86_64") == 8
    assert conv_block({"neon"}, "aarch64") is None


def test_a_residual_group_is_padded_with_zeros_and_the_outputs_stay_the_same() -> None:
    model = _graph()
    result = pad_channels(model, 16)
    assert result.note == "" and result.groups == 2  # {a, b, a+b} at 8 and {w} at 24
    padded = result.model
    assert _weights(padded, "project_a_w").shape == (16, 16, 1, 1)
    assert _weights(padded, "project_b_w").shape == (16, 32, 1, 1)
    assert _weights(padded, "expand_w").shape == (32, 16, 1, 1)
    assert _weights(padded, "wide_w").shape == (32, 16, 3, 3)
    assert not _weights(padded, "project_a_w")[8:].any() and not _weights(padded, "project_a_b")[8:].any()
    assert not _weights(padded, "wide_w")[:, 8:].any() and not _weights(padded, "wide_w")[24:].any()
    assert _weights(padded, "head_w").shape == (5, 32, 1, 1)
    x = RNG.uniform(-1, 1, (1, 3, 32, 48)).astype(np.float32)
    (before,), (after,) = _run(model, x), _run(padded, x)
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)
    assert _weights(model, "project_a_w").shape == (8, 16, 1, 1)  # the original is not touched


def test_a_group_that_meets_anything_but_a_conv_or_an_add_is_left_as_it_is() -> None:
    result = pad_channels(_graph(narrow_feeds_relu=True), 16)
    assert _weights(result.model, "project_a_w").shape == (8, 16, 1, 1)  # a+b feeds a Relu: not padded
    assert _weights(result.model, "wide_w").shape == (32, 8, 3, 3)  # the 24-channel group still is
    assert result.groups == 1
    result = pad_channels(_graph(depthwise=True), 16)
    assert _weights(result.model, "wide_w").shape == (24, 16, 3, 3)  # read by a depthwise: left at 24
    assert _weights(result.model, "project_a_w").shape == (16, 16, 1, 1) and result.groups == 1


def test_nothing_to_pad_on_a_block_of_8_and_an_int8_graph_is_never_touched() -> None:
    model = _graph()
    result = pad_channels(model, 8)
    assert result.groups == 0 and "multiple of 8" in result.note and result.model is model
    int8 = onnx.load(str(DEMO / "model.int8.onnx"))
    result = pad_channels(int8, 16)
    assert result.groups == 0 and "INT8" in result.note and result.model is int8


def test_a_padding_whose_outputs_differ_is_refused_and_the_original_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    apply = cpu_layout._apply

    def wrong(model: onnx.ModelProto, groups: list, block: int) -> None:  # the fault: new channels not zero, and read
        apply(model, groups, block)
        for init in model.graph.initializer:
            array = numpy_helper.to_array(init).copy()
            if init.name == "project_a_b":
                array[8:] = 1.0
            elif init.name == "expand_w":
                array[:, 8:] = 0.5
            else:
                continue
            init.CopyFrom(numpy_helper.from_array(array, init.name))

    monkeypatch.setattr(cpu_layout, "_apply", wrong)
    model = _graph()
    result = pad_channels(model, 16)
    assert result.groups == 0 and result.model is model and "differed" in result.note


def _nhwc_graph() -> onnx.ModelProto:
    """A Keras-like graph: NHWC input, Transpose to NCHW, then the bottleneck."""
    model = _graph()
    graph = model.graph
    graph.node.insert(0, helper.make_node("Transpose", ["image"], ["x"], perm=[0, 3, 1, 2], name="to_nchw"))
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 32, 48, 3]))
    return model


def test_the_input_transpose_is_cut_and_the_same_frame_gives_the_same_outputs_as_nchw() -> None:
    model = _nhwc_graph()
    cut = nchw_input(model)
    assert cut.cut and not any(n.op_type == "Transpose" for n in cut.model.graph.node)
    assert [d.dim_value for d in cut.model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 32, 48]
    x = RNG.uniform(-1, 1, (1, 32, 48, 3)).astype(np.float32)
    before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"image": x})
    after = ort.InferenceSession(cut.model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"image": np.ascontiguousarray(x.transpose(0, 3, 1, 2))})
    np.testing.assert_array_equal(after[0], before[0])
    assert not nchw_input(_graph()).cut  # already NCHW: nothing to cut
    doubled = _nhwc_graph()
    doubled.graph.node.append(helper.make_node("Relu", ["image"], ["seen"]))  # the input read twice: left alone
    assert not nchw_input(doubled).cut


def test_the_demo_model_is_laid_out_once_cached_and_boxes_agree(tmp_path: Path) -> None:
    path, how = laid_out(DEMO / "model.onnx", tmp_path / "layouts", 16)
    assert path.parent == tmp_path / "layouts" and "padded to multiples of 16" in how and "NCHW" in how
    made = path.stat().st_mtime_ns
    again, how_again = laid_out(DEMO / "model.onnx", tmp_path / "layouts", 16)
    assert again == path and how_again == f"{how} (cached)" and path.stat().st_mtime_ns == made
    assert laid_out(DEMO / "model.onnx", tmp_path / "other", None)[0] == DEMO / "model.onnx"
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(b"\x08\x07garbage")
    path_d, how_d = laid_out(damaged, tmp_path / "damaged", 16)  # ONNX Runtime then says what is wrong
    assert path_d == damaged and "could not read the graph" in how_d and not (tmp_path / "damaged").exists()
    x = np.random.default_rng(3).uniform(0, 1, (1, 704, 960, 3)).astype(np.float32)
    exported = ort.InferenceSession(str(DEMO / "model.onnx"), providers=["CPUExecutionProvider"]).run(None, {"image": x})
    ours = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert ours.get_modelmeta().custom_metadata_map["scopehive.input_layout"] == "NCHW"
    for before, after in zip(exported, ours.run(None, {"image": np.ascontiguousarray(x.transpose(0, 3, 1, 2))}), strict=True):
        np.testing.assert_allclose(after, before, rtol=1e-3, atol=1e-3)


def test_the_device_runs_both_models_laid_out_and_finds_the_same_boxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = load_bundle(DEMO)
    frame = np.random.default_rng(5).integers(0, 255, (960, 1280, 3), np.uint8)
    for precision in ("float", "int8"):
        monkeypatch.setattr("device.inference.onnx_backend.conv_block", lambda: 16)
        laid = Detector(bundle, OnnxBackend(bundle, tmp_path / "laid", precision=precision))  # type: ignore[arg-type]
        monkeypatch.setattr("device.inference.onnx_backend.conv_block", lambda: None)
        plain = Detector(bundle, OnnxBackend(bundle, tmp_path / "plain", precision=precision))  # type: ignore[arg-type]
        assert laid.input_spec.layout == "NCHW" and plain.input_spec.layout == "NHWC", precision
        assert ("padded" in laid.backend.layout) == (precision == "float")  # type: ignore[attr-defined]
        assert plain.backend.layout.startswith("as exported")  # type: ignore[attr-defined]
        a, b = laid.detect(frame), plain.detect(frame)
        assert len(a) == len(b)
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=0.05)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-3)
        nhwc = np.random.default_rng(6).uniform(-1, 1, (1, 704, 960, 3)).astype(np.float32)  # as a hive's fallback gets it
        for name, value in laid.backend.run(nhwc).items():
            np.testing.assert_allclose(value, plain.backend.run(nhwc)[name], rtol=1e-3, atol=1e-3)
    assert not (tmp_path / "plain" / "layouts").exists()


def test_writers_starting_at_once_all_get_the_cached_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two devices (or hive servers) laying out one model at the same moment: each writes its own
    partial file, so none finds its file renamed away under it and falls back to the exported one."""
    import threading

    source = tmp_path / "model.onnx"
    onnx.save(_graph(), str(source))
    writers = 4
    together = threading.Barrier(writers)
    replace = Path.replace

    def replace_together(self: Path, target: Path) -> Path:
        if self.name.endswith(".partial"):
            together.wait(timeout=10)  # every writer has written its file before any is renamed
        return replace(self, target)

    monkeypatch.setattr(Path, "replace", replace_together)
    cache = tmp_path / "layouts"
    results: list[tuple[Path, str]] = []
    threads = [threading.Thread(target=lambda: results.append(laid_out(source, cache, 16))) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (made,) = cache.glob("*.onnx")
    assert [path for path, _ in results] == [made] * writers, results
    assert not list(cache.glob("*.partial"))
    assert _weights(onnx.load(str(made)), "project_a_w").shape == (16, 16, 1, 1)
