"""The detector: a MobileNetV2 backbone with a CenterNet-style head, and its in-graph decoder.

Why this shape: small dense touching objects (cells, particles) are best found as centre peaks on
a fine grid (stride 4) rather than as anchor boxes; touching objects keep separate peaks. Peak
decoding (3x3 max-pool suppression + top-K) lives inside the exported graph so the device gets
final boxes, scores and classes from plain ONNX ops (MaxPool, TopK, GatherND, Floor) that
ONNX Runtime and TensorRT both run, and needs no model-specific code.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import layers

from trainer.grid import STRIDE

# MobileNetV2 blocks ending at strides 4, 8 and 16; stride 32 adds compute but little for small objects.
TAPS = ("block_2_add", "block_5_add", "block_12_add")
_BN_MOMENTUM = 0.9  # running statistics settle within ~50 steps: small datasets train few steps
_MAX_LOG_SIZE = 6.0  # exp(6) * stride = 1600 px: larger than any input we allow


@dataclass(frozen=True)
class ModelSpec:
    """What the network looks like; stored in the bundle so it can be rebuilt for export."""

    num_classes: int
    width_multiplier: float = 0.35
    head_channels: int = 48
    weights: str | None = None  # None, "imagenet" or a path to MobileNetV2 weights


def mobilenet_v2(width_multiplier: float) -> keras.Model:
    """The bare MobileNetV2 feature extractor on any input size: what a --weights file holds."""
    return keras.applications.MobileNetV2(input_shape=(None, None, 3), alpha=width_multiplier, include_top=False, weights=None)


def _backbone(spec: ModelSpec) -> keras.Model:
    """MobileNetV2 on any input size; ImageNet or file weights are copied in (size independent).

    A file is a lab's own: `python -m trainer pretrain` writes one from unlabelled captures, and
    Keras' MobileNetV2 no-top files (brought on a stick) load as they are.
    """
    base = mobilenet_v2(spec.width_multiplier)
    if spec.weights == "imagenet":
        # Keras only ships ImageNet weights for fixed square inputs; conv weights fit any size.
        pretrained = keras.applications.MobileNetV2(
            input_shape=(224, 224, 3), alpha=spec.width_multiplier, include_top=False, weights="imagenet"
        )
        base.set_weights(pretrained.get_weights())
    elif spec.weights:
        base.load_weights(spec.weights)
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            # Keras' MobileNetV2 uses 0.999: after a few hundred steps the running statistics are
            # still mostly their initial values and inference-mode outputs are garbage.
            layer.momentum = _BN_MOMENTUM
    outputs = [base.get_layer(name).output for name in TAPS]
    return keras.Model(base.input, outputs, name="backbone")


def _conv_bn(x: tf.Tensor, channels: int, name: str) -> tf.Tensor:
    x = layers.SeparableConv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x)


def build_raw_model(spec: ModelSpec) -> keras.Model:
    """Any-size image in, dense maps out: heatmap logits [C], log-size [2], offset [2] at stride 4.

    Used for training (random crops of any size) and wrapped by `build_inference_model`.
    """
    image = keras.Input((None, None, 3), name="image")
    c4, c8, c16 = _backbone(spec)(image)
    ch = spec.head_channels
    p16 = layers.Conv2D(ch, 1, name="lat16")(c16)
    p8 = layers.Add(name="fuse8")([layers.UpSampling2D(2, name="up16")(p16), layers.Conv2D(ch, 1, name="lat8")(c8)])
    p8 = _conv_bn(p8, ch, "smooth8")
    p4 = layers.Add(name="fuse4")([layers.UpSampling2D(2, name="up8")(p8), layers.Conv2D(ch, 1, name="lat4")(c4)])
    p4 = _conv_bn(p4, ch, "smooth4")
    heat = layers.Conv2D(
        spec.num_classes, 1, name="heatmap", bias_initializer=keras.initializers.Constant(-4.6)
    )(_conv_bn(p4, ch, "heat_head"))
    box = _conv_bn(p4, ch, "box_head")
    size = layers.Conv2D(2, 1, name="log_size")(box)
    offset = layers.Conv2D(2, 1, name="offset")(box)
    return keras.Model(image, {"heatmap": heat, "log_size": size, "offset": offset}, name="centernet")


class PeakDecoder(layers.Layer):
    """Dense maps -> top-K boxes (x1, y1, x2, y2 in input pixels), scores and class indices.

    Index arithmetic is done in float32 (exact below 2**24 cells) so the graph needs no integer
    Mod/Div, which some TensorRT versions reject.
    """

    def __init__(self, max_detections: int, image_size: tuple[int, int], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.max_detections = max_detections
        self.image_size = image_size  # (height, width)

    def call(self, heatmap: tf.Tensor, log_size: tf.Tensor, offset: tf.Tensor) -> tuple[tf.Tensor, ...]:
        height, width = self.image_size
        grid_h, grid_w = height // STRIDE, width // STRIDE
        classes = heatmap.shape[-1]
        heat = tf.sigmoid(heatmap)
        peaks = tf.nn.max_pool2d(heat, 3, 1, "SAME")
        heat = heat * tf.cast(tf.equal(heat, peaks), heat.dtype)
        flat = tf.reshape(heat, (-1, grid_h * grid_w * classes))
        k = min(self.max_detections, grid_h * grid_w * classes)
        scores, index = tf.math.top_k(flat, k=k, sorted=True)
        index_f = tf.cast(index, tf.float32)
        cell = tf.floor(index_f / classes)
        class_id = index_f - cell * classes
        row = tf.floor(cell / grid_w)
        col = cell - row * grid_w
        gather_at = tf.expand_dims(tf.cast(cell, tf.int32), -1)
        size = tf.gather_nd(tf.reshape(log_size, (-1, grid_h * grid_w, 2)), gather_at, batch_dims=1)
        shift = tf.gather_nd(tf.reshape(offset, (-1, grid_h * grid_w, 2)), gather_at, batch_dims=1)
        wh = tf.exp(tf.clip_by_value(size, -_MAX_LOG_SIZE, _MAX_LOG_SIZE)) * STRIDE
        cx = (col + shift[..., 0]) * STRIDE
        cy = (row + shift[..., 1]) * STRIDE
        x1 = tf.clip_by_value(cx - wh[..., 0] / 2, 0.0, float(width))
        y1 = tf.clip_by_value(cy - wh[..., 1] / 2, 0.0, float(height))
        x2 = tf.clip_by_value(cx + wh[..., 0] / 2, 0.0, float(width))
        y2 = tf.clip_by_value(cy + wh[..., 1] / 2, 0.0, float(height))
        boxes = tf.stack([x1, y1, x2, y2], axis=-1)
        return boxes, scores, class_id

    def get_config(self) -> dict[str, object]:
        return {**super().get_config(), "max_detections": self.max_detections, "image_size": self.image_size}


def build_inference_model(raw: keras.Model, input_hw: tuple[int, int], max_detections: int) -> keras.Model:
    """Fixed-size normalised image in, scopehive-v1 outputs out (boxes, scores, classes)."""
    height, width = input_hw
    if height % 32 or width % 32:
        raise ValueError(f"input size {width}x{height} must be a multiple of 32 in both directions")
    image = keras.Input((height, width, 3), name="image")
    maps = raw(image)
    boxes, scores, classes = PeakDecoder(max_detections, (height, width), name="decode")(
        maps["heatmap"], maps["log_size"], maps["offset"]
    )
    outputs = {
        "boxes": layers.Identity(name="boxes")(boxes),
        "scores": layers.Identity(name="scores")(scores),
        "classes": layers.Identity(name="classes")(classes),
    }
    return keras.Model(image, outputs, name="scopehive_detector")
