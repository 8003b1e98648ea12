"""device/inference/channel_pad.py: narrow channel groups padded to the CPU's block, nothing else changed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from device.inference import channel_pad
from device.inference.channel_pad import conv_block, laid_out, pad_channels
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
    apply = channel_pad._apply

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

    monkeypatch.setattr(channel_pad, "_apply", wrong)
    model = _graph()
    result = pad_channels(model, 16)
    assert result.groups == 0 and result.model is model and "differed" in result.note


def test_the_demo_model_is_padded_once_cached_and_boxes_agree(tmp_path: Path) -> None:
    cache = tmp_path / "layouts" / "demo_c16.onnx"
    path, how = laid_out(DEMO / "model.onnx", cache, 16)
    assert path == cache and "padded" in how
    made = cache.stat().st_mtime_ns
    again, how_again = laid_out(DEMO / "model.onnx", cache, 16)
    assert again == cache and "cached" in how_again and cache.stat().st_mtime_ns == made
    assert laid_out(DEMO / "model.onnx", tmp_path / "other.onnx", None) == (DEMO / "model.onnx", "no blocked convolution layout on this CPU")
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(b"\x08\x07garbage")
    path, how = laid_out(damaged, tmp_path / "damaged_c16.onnx", 16)  # ONNX Runtime then says what is wrong
    assert path == damaged and "could not read the graph" in how and not (tmp_path / "damaged_c16.onnx").exists()
    x = np.random.default_rng(3).uniform(0, 1, (1, 704, 960, 3)).astype(np.float32)
    outputs = []
    for file in (DEMO / "model.onnx", cache):
        session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {session.get_inputs()[0].name: x}))
    for before, after in zip(*outputs, strict=True):
        np.testing.assert_allclose(after, before, rtol=1e-3, atol=1e-3)


def test_the_device_runs_the_padded_float_model_on_cpu_and_int8_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("device.inference.onnx_backend.conv_block", lambda: 16)
    bundle = load_bundle(DEMO)
    float_backend = OnnxBackend(bundle, tmp_path, precision="float")
    assert "padded to multiples of 16" in float_backend.layout
    assert list((tmp_path / "layouts").glob("*_c16.onnx"))
    int8_backend = OnnxBackend(bundle, tmp_path / "int8", precision="int8")
    assert int8_backend.layout == "as exported" and not (tmp_path / "int8" / "layouts").exists()


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
    cache = tmp_path / "layouts" / "m_c16.onnx"
    results: list[tuple[Path, str]] = []
    threads = [threading.Thread(target=lambda: results.append(laid_out(source, cache, 16))) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [path for path, _ in results] == [cache] * writers, results
    assert not list(cache.parent.glob("*.partial"))
    assert _weights(onnx.load(str(cache)), "project_a_w").shape == (16, 16, 1, 1)
