"""Keras -> ONNX export, and the check that the ONNX model says what Keras says.

The comparison runs on real frames (validation images), because random noise makes every peak a
near-tie and the top-K order meaningless. Detections are compared row by row where Keras is at
least a little confident; the largest absolute difference goes into model.json.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import onnx

from trainer.errors import ExportError
from trainer.graph_rewrite import upsampling_as_resize

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

OPSET = 17
OUTPUT_ORDER = ("boxes", "scores", "classes")
_COMPARE_FROM_SCORE = 0.05  # below this, near-equal peaks may legitimately swap places


def export_onnx(model: keras.Model) -> bytes:
    """Inference model (fixed input size) -> ONNX bytes with outputs boxes, scores, classes."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf2onnx

    height, width = model.input_shape[1:3]
    model(np.zeros((1, height, width, 3), np.float32), training=False)  # build every layer first
    spec = [tf.TensorSpec((None, height, width, 3), tf.float32, name="image")]
    @tf.autograph.experimental.do_not_convert  # plain Keras call: nothing for autograph to rewrite
    def infer(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return model(image, training=False)  # type: ignore[no-any-return]

    function = tf.function(infer, input_signature=spec)
    try:
        proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=OPSET)
    except Exception as exc:  # tf2onnx raises bare exceptions of many kinds
        raise ExportError(f"tf2onnx could not convert the model: {exc}") from exc
    by_name = {out.name: out for out in proto.graph.output}
    if set(by_name) != set(OUTPUT_ORDER):
        raise ExportError(f"exported outputs are {sorted(by_name)}, expected {list(OUTPUT_ORDER)}")
    ordered = [by_name[name] for name in OUTPUT_ORDER]
    del proto.graph.output[:]
    proto.graph.output.extend(ordered)
    proto.producer_name = "scopehive-trainer"
    onnx.checker.check_model(proto)
    return bytes(lighter_graph(proto).SerializeToString())


def lighter_graph(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The export's graph with its nearest upsampling as Resize (trainer/graph_rewrite.py), outputs
    checked identical; the original when no rewrite was safe (said in the log)."""
    rewrite = upsampling_as_resize(proto)
    if rewrite.replaced:
        log.info("ONNX graph: %d upsampling chain(s) -> Resize, %d nodes fewer", rewrite.replaced, rewrite.removed_nodes)
    else:
        log.info("ONNX graph left as tf2onnx wrote it: %s", rewrite.note)
    return rewrite.model


def onnx_runner(onnx_model: bytes) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """One ONNX Runtime session, called like the Keras model: batch in, named outputs out."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    input_name = session.get_inputs()[0].name

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        values = session.run(None, {input_name: batch.astype(np.float32)})
        return dict(zip(names, values, strict=True))

    return run


def run_onnx(onnx_model: bytes, batch: np.ndarray) -> dict[str, np.ndarray]:
    return onnx_runner(onnx_model)(batch)


def compare_with_keras(onnx_model: bytes, model: keras.Model, frames: np.ndarray) -> dict[str, float]:
    """Max abs differences between ONNX Runtime and Keras outputs on normalised frames [N, h, w, 3]."""
    ours = run_onnx(onnx_model, frames)
    theirs = {k: np.asarray(v) for k, v in model(frames, training=False).items()}
    confident = theirs["scores"] >= _COMPARE_FROM_SCORE
    diffs = {
        "scores": float(np.abs(ours["scores"] - theirs["scores"]).max()),
        "boxes": float(np.abs(ours["boxes"] - theirs["boxes"])[confident].max(initial=0.0)),
        "classes": float(np.abs(ours["classes"].astype(np.float32) - theirs["classes"])[confident].max(initial=0.0)),
    }
    return {
        "frames": int(len(frames)),
        "compared_detections": int(confident.sum()),
        "max_abs_diff": max(diffs.values()),
        **{f"max_abs_diff_{k}": v for k, v in diffs.items()},
    }
