"""Benchmark: per-pixel speed of the demo model against YOLOv8n under ONNX Runtime on the CPU, float
and INT8, in alternating repeats, CPU time beside wall time (issue 27, "What it must show").

How the YOLOv8n graph is built: written here in Keras from its published structure (YOLOv8 at
width 0.25, depth 0.33, 80 classes), with random weights; no weights are downloaded and the
ultralytics package is not used. Conv(k, s) = Conv2D (no bias) + BatchNorm + SiLU. Backbone: Conv 16
s2, Conv 32 s2, C2f 32 n=1 (shortcut), Conv 64 s2, C2f 64 n=2, Conv 128 s2, C2f 128 n=2, Conv 256
s2, C2f 256 n=1, SPPF 256 k5. PAN-FPN neck: upsample + concat P4 -> C2f 128, upsample + concat P3
-> C2f 64 (P3 out), Conv 64 s2 + concat -> C2f 128 (P4 out), Conv 128 s2 + concat SPPF -> C2f 256
(P5 out), neck C2f without shortcut. Detect head per level, decoupled: box branch 2x Conv 64 +
1x1 to 4x16 DFL bins, class branch 2x Conv 80 + 1x1 to 80 classes; DFL expectation, anchor decode
and class sigmoid are in the graph, as in ultralytics' own ONNX export: output [1, 8400, 84].
The trainable parameter count it prints should be ~3.2 M (ultralytics reports 3,157,200 for
yolov8n; its 16 fixed DFL weights are a constant here). The INT8 YOLOv8n is ONNX Runtime static
QDQ quantisation calibrated on random frames (fine for timing, meaningless for accuracy).

    flock /tmp/scopehive-cpu.lock .venv/bin/python bench/yolo_per_pixel.py [--repeats 5 --passes 5]

Both models get the device's intra-op thread count and one inter-op thread. Work files go to
var/bench/yolo/ (the YOLOv8n graphs are built once, in a child process, and reused). CPU time is the process's (every thread), per pass.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEMO = ROOT / "device" / "models" / "demo"
WORK = ROOT / "var" / "bench" / "yolo"
YOLO_SIZE = 640
NC, REG_MAX = 80, 16


def yolov8n(size: int = YOLO_SIZE):  # type: ignore[no-untyped-def]
    """YOLOv8n in Keras (NHWC input [1, size, size, 3]) with random weights; see the module docstring."""
    import keras
    from keras import layers, ops

    def conv(x, c, k=1, s=1):  # type: ignore[no-untyped-def]
        x = layers.Conv2D(c, k, s, padding="same", use_bias=False)(x)
        return layers.Activation("silu")(layers.BatchNormalization(epsilon=1e-3)(x))

    def c2f(x, c2, n, shortcut):  # type: ignore[no-untyped-def]
        c = c2 // 2
        y = conv(x, 2 * c)
        parts = [y[..., :c], y[..., c:]]
        for _ in range(n):
            z = conv(conv(parts[-1], c, 3), c, 3)
            parts.append(layers.Add()([parts[-1], z]) if shortcut else z)
        return conv(layers.Concatenate()(parts), c2)

    def sppf(x, c2, k=5):  # type: ignore[no-untyped-def]
        x = conv(x, x.shape[-1] // 2)
        pools = [x]
        for _ in range(3):
            pools.append(layers.MaxPooling2D(k, 1, padding="same")(pools[-1]))
        return conv(layers.Concatenate()(pools), c2)

    def up_cat(x, skip):  # type: ignore[no-untyped-def]
        return layers.Concatenate()([layers.UpSampling2D(2, interpolation="nearest")(x), skip])

    image = keras.Input((size, size, 3), batch_size=1, name="image")
    x = conv(conv(image, 16, 3, 2), 32, 3, 2)
    x = c2f(x, 32, 1, True)
    p3 = c2f(conv(x, 64, 3, 2), 64, 2, True)
    p4 = c2f(conv(p3, 128, 3, 2), 128, 2, True)
    p5 = sppf(c2f(conv(p4, 256, 3, 2), 256, 1, True), 256)
    n4 = c2f(up_cat(p5, p4), 128, 1, False)
    o3 = c2f(up_cat(n4, p3), 64, 1, False)
    o4 = c2f(layers.Concatenate()([conv(o3, 64, 3, 2), n4]), 128, 1, False)
    o5 = c2f(layers.Concatenate()([conv(o4, 128, 3, 2), p5]), 256, 1, False)

    bins = np.arange(REG_MAX, dtype=np.float32)[:, None]  # DFL: the expected bin, a fixed 1x1 conv
    boxes, classes = [], []
    for level, stride in ((o3, 8), (o4, 16), (o5, 32)):
        h, w = size // stride, size // stride
        box = layers.Conv2D(4 * REG_MAX, 1)(conv(conv(level, 64, 3), 64, 3))
        cls = layers.Conv2D(NC, 1)(conv(conv(level, 80, 3), 80, 3))
        dist = ops.squeeze(ops.matmul(ops.softmax(ops.reshape(box, (1, h * w, 4, REG_MAX)), axis=-1), bins), -1)
        gy, gx = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
        anchors = np.stack([gx.ravel(), gy.ravel()], -1)[None].astype(np.float32)
        lt, rb = dist[..., :2], dist[..., 2:]
        x1y1, x2y2 = ops.subtract(anchors, lt), ops.add(rb, anchors)
        boxes.append(ops.concatenate([(x1y1 + x2y2) / 2, x2y2 - x1y1], -1) * float(stride))
        classes.append(ops.sigmoid(ops.reshape(cls, (1, h * w, NC))))
    out = ops.concatenate([ops.concatenate(boxes, 1), ops.concatenate(classes, 1)], -1)
    return keras.Model(image, out, name="yolov8n")


def export_yolo(path: Path) -> None:
    """Keras -> ONNX through tf2onnx.from_function at trainer/export.py's opset (export_onnx itself
    insists on the trainer's boxes/scores/classes outputs)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf2onnx

    from trainer.export import OPSET

    model = yolov8n()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    counts = {"trainable": trainable, "with_batchnorm_statistics": model.count_params()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(counts))
    spec = [tf.TensorSpec((1, YOLO_SIZE, YOLO_SIZE, 3), tf.float32, name="image")]
    function = tf.function(tf.autograph.experimental.do_not_convert(lambda image: model(image, training=False)),
                           input_signature=spec)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=OPSET)
    path.write_bytes(proto.SerializeToString())


def quantize_yolo(src: Path, dst: Path) -> None:
    """Static QDQ INT8 (uint8 activations, per-channel int8 weights) calibrated on random frames."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Frames:
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.it = iter([{"image": rng.uniform(-1, 1, (1, YOLO_SIZE, YOLO_SIZE, 3)).astype(np.float32)} for _ in range(4)])

        def get_next(self):  # type: ignore[no-untyped-def]
            return next(self.it, None)

    prepared = dst.with_suffix(".prep.onnx")
    quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(dst), Frames(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True,
                    op_types_to_quantize=["Conv", "Mul", "Add", "Concat", "MaxPool", "Sigmoid", "Resize"])
    prepared.unlink()


def session(path: Path, threads: int):  # type: ignore[no-untyped-def]
    """YOLOv8n under the device's own session options (threads, no spinning), so both models'
    CPU time counts the same work: a spinning pool bills its idle waits as CPU time."""
    import onnxruntime as ort

    from device.inference.onnx_backend import session_options

    return ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds; medians are reported")
    parser.add_argument("--passes", type=int, default=5, help="network passes per model per round")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: the device's choice)")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    yolo_float, yolo_int8 = WORK / "yolov8n.onnx", WORK / "yolov8n.int8.onnx"
    if args.build_only:
        export_yolo(yolo_float)
        quantize_yolo(yolo_float, yolo_int8)
        return
    if not yolo_int8.is_file():  # built in a child process: TensorFlow in this one skewed the timings
        subprocess.run([sys.executable, __file__, "--build-only"], check=True)
    from device.inference.onnx_backend import cores_here, intra_op_threads

    threads = args.threads or intra_op_threads(cores_here())
    card = json.loads((DEMO / "model.json").read_text())
    dw, dh = card["input"]["width"], card["input"]["height"]
    counts = json.loads(yolo_float.with_suffix(".json").read_text())
    print(f"YOLOv8n (Keras, random weights): {counts['trainable']:,} trainable parameters "
          f"({counts['with_batchnorm_statistics']:,} with BatchNorm statistics); expected ~3.2 M")
    models = {"demo float": (DEMO / "model.onnx", dw, dh)}
    int8_file = (card.get("int8") or {}).get("file")
    if int8_file and (DEMO / int8_file).is_file():
        models["demo INT8"] = (DEMO / int8_file, dw, dh)
    models |= {"YOLOv8n float": (yolo_float, YOLO_SIZE, YOLO_SIZE), "YOLOv8n INT8": (yolo_int8, YOLO_SIZE, YOLO_SIZE)}
    rng = np.random.default_rng(0)
    runs = {}
    for name, (path, w, h) in models.items():
        sess = session(path, threads)
        feed = {sess.get_inputs()[0].name: rng.uniform(-1, 1, (1, h, w, 3)).astype(np.float32)}
        for _ in range(2):
            sess.run(None, feed)  # warm-up: allocations and the first-run graph work
        runs[name] = (sess, feed)
    cpu: dict[str, list[float]] = {n: [] for n in models}
    wall: dict[str, list[float]] = {n: [] for n in models}
    for _ in range(args.repeats):
        for name, (sess, feed) in runs.items():
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(args.passes):
                sess.run(None, feed)
            cpu[name].append((time.process_time() - c0) * 1000 / args.passes)
            wall[name].append((time.perf_counter() - w0) * 1000 / args.passes)
    print(f"ONNX Runtime CPU, {threads} intra-op thread(s), {cores_here()} core(s), load average "
          f"{os.getloadavg()[0]:.1f}; medians of {args.repeats} alternating rounds of {args.passes} passes")
    print(f"{'model':<14} {'input':>8} {'CPU ms':>8} {'wall ms':>8} {'CPU us/MP':>10} {'wall us/MP':>10}")
    per_mp = {}
    for name, (_, w, h) in models.items():
        mp = w * h / 1e6
        c, wl = statistics.median(cpu[name]), statistics.median(wall[name])
        per_mp[name] = (c * 1000 / mp, wl * 1000 / mp)
        print(f"{name:<14} {w}x{h:<4} {c:8.1f} {wl:8.1f} {per_mp[name][0]:10.0f} {per_mp[name][1]:10.0f}")
    pairs = [("demo float", "YOLOv8n float"), ("demo INT8", "YOLOv8n float"), ("demo INT8", "YOLOv8n INT8")]
    for demo, yolo in pairs:
        if demo in per_mp:
            print(f"{demo} vs {yolo}: demo is {per_mp[yolo][0] / per_mp[demo][0]:.2f}x faster per pixel than YOLOv8n "
                  f"(CPU time; wall {per_mp[yolo][1] / per_mp[demo][1]:.2f}x)")


if __name__ == "__main__":
    main()
