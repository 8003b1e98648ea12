"""trainer/graph_rewrite.py: Keras' nearest upsampling leaves the export as one Resize, and only
when the rewritten graph answers exactly as tf2onnx's did."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from tests.device.bundles import card
from trainer import graph_rewrite
from trainer.cli import main
from trainer.graph_rewrite import upsampling_as_resize

DEMO = Path(__file__).resolve().parents[2] / "device" / "models" / "demo"


@pytest.fixture(scope="module")
def upsampling_graph() -> onnx.ModelProto:
    """What tf2onnx makes of a feature pyramid's step: 1x1 conv, UpSampling2D(2), add a lateral."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    import tf2onnx
    from keras import layers

    image = keras.Input((None, None, 3), name="image")
    coarse = layers.Conv2D(8, 3, strides=2, padding="same")(image)
    fine = layers.Conv2D(8, 1)(image)
    up = layers.UpSampling2D(2, name="up16")(layers.Conv2D(8, 1)(coarse))
    out = layers.Conv2D(4, 3, padding="same")(layers.Add()([up, fine]))
    model = keras.Model(image, out)
    spec = [tf.TensorSpec((None, 24, 32, 3), tf.float32, name="image")]
    function = tf.function(lambda x: model(x, training=False), input_signature=spec)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=17)
    return proto


def run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def ops(model: onnx.ModelProto) -> Counter[str]:
    return Counter(node.op_type for node in model.graph.node)


def test_the_upsampling_chain_becomes_one_resize_with_identical_outputs(upsampling_graph: onnx.ModelProto) -> None:
    assert ops(upsampling_graph)["Tile"] == 2  # tf2onnx's spelling: two rounds of repeat
    rewrite = upsampling_as_resize(upsampling_graph)
    assert rewrite.replaced == 1 and rewrite.note == ""
    assert ops(rewrite.model)["Resize"] == 1 and ops(rewrite.model)["Tile"] == 0
    assert rewrite.removed_nodes == len(upsampling_graph.graph.node) - len(rewrite.model.graph.node) > 10
    for seed in range(3):  # frames the rewrite's own check never saw
        x = np.random.default_rng(100 + seed).uniform(-1, 1, (2, 24, 32, 3)).astype(np.float32)
        assert all(np.array_equal(a, b) for a, b in zip(run(upsampling_graph, x), run(rewrite.model, x), strict=True))


def test_a_rewrite_that_would_change_an_output_is_not_shipped(upsampling_graph: onnx.ModelProto,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    replace = graph_rewrite._replace

    def linear(model: onnx.ModelProto, ends: dict[str, str]) -> onnx.ModelProto:  # a wrong Resize: bilinear
        out = replace(model, ends)
        for node in out.graph.node:
            if node.op_type == "Resize":
                next(a for a in node.attribute if a.name == "mode").s = b"linear"
        return out

    monkeypatch.setattr(graph_rewrite, "_replace", linear)
    rewrite = upsampling_as_resize(upsampling_graph)
    assert rewrite.replaced == 0 and rewrite.model is upsampling_graph
    assert "differed" in rewrite.note


def test_a_graph_without_upsampling_is_left_alone() -> None:
    from tests.device.bundles import peak_graph

    graph = peak_graph(64, 48)
    rewrite = upsampling_as_resize(graph)
    assert rewrite.model is graph and rewrite.replaced == 0 and rewrite.note == "no upsampling chain in the graph"


def test_export_graph_only_rewrites_a_bundle_and_drops_what_was_made_from_the_old_graph(
        upsampling_graph: onnx.ModelProto, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "old"
    bundle.mkdir()
    onnx.save(upsampling_graph, bundle / "model.onnx")
    (bundle / "model.int8.onnx").write_bytes(b"made from the old graph")
    int8 = {"file": "model.int8.onnx", "default": True, "reason": "r", "max_map50_loss": 0.01, "calibration_frames": 32}
    (bundle / "model.json").write_text(json.dumps(card("old", ["cell"], 32, 24, format_version=3, int8=int8)))
    assert main(["export", str(bundle), "--graph-only"]) == 0
    said = capsys.readouterr().out
    assert "1 upsampling chain(s) -> Resize" in said and "run export --int8 again" in said
    assert ops(onnx.load(str(bundle / "model.onnx")))["Resize"] == 1
    assert not (bundle / "model.int8.onnx").exists() and json.loads((bundle / "model.json").read_text())["int8"] is None
    assert main(["export", str(bundle), "--graph-only"]) == 0  # a second time: nothing left to do, nothing touched
    assert "left as it is: no upsampling chain" in capsys.readouterr().out


def test_export_graph_only_with_int8_says_to_run_them_one_after_the_other(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path), "--graph-only", "--int8"]) != 0
    assert "run export --graph-only first, then export --int8" in capsys.readouterr().err


def test_the_committed_demo_and_the_trainers_exports_carry_the_lighter_graph(trained_bundle: Path) -> None:
    for bundle in (DEMO, trained_bundle):
        count = ops(onnx.load(str(bundle / "model.onnx")))
        assert count["Resize"] == 2  # trainer/model.py's up16 and up8
        upsampling_tiles = [n.name for n in onnx.load(str(bundle / "model.onnx")).graph.node
                            if n.op_type == "Tile" and "/decode" not in n.name]
        assert upsampling_tiles == []
    int8 = ops(onnx.load(str(DEMO / "model.int8.onnx")))
    assert int8["Resize"] == 2 and int8["QuantizeLinear"] > 0  # the INT8 model was quantised from the new graph
