"""INT8 for CPU boxes: ONNX Runtime static quantisation (QDQ) of a bundle's float model.onnx,
calibrated on frames of the training package, and the held-out comparison that decides whether
the device runs it by default.

Why QDQ and these operators: QDQ keeps one graph every ONNX Runtime reads (the CPU provider fuses
each DequantizeLinear -> op -> QuantizeLinear into its integer kernel); quantising the backbone's
Conv, Clip (ReLU6), Add, Mul, Concat and MaxPool keeps the chain in 8 bits between convolutions,
which is where the time goes (Conv alone: 10 % faster; the chain: 1.6-2x on the demo model). Box
decoding, TopK and NMS stay float. Activations are per tensor (uint8), weights per channel (int8),
ranges from percentile calibration. On the small test model (8 held-out images, 24 calibration
frames) mAP@0.5 went 0.856 -> 0.842 with MinMax or entropy ranges, 0.869 with percentile; with
the decoding quantised too it collapsed to 0.03 (see float_nodes).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from trainer.bundle import Int8Spec, read_card, write_card
from trainer.dataset import Dataset, Sample, split_dataset
from trainer.errors import ExportError

INT8_FILE = "model.int8.onnx"
MAX_MAP50_LOSS = 0.01  # the most held-out mAP@0.5 INT8 may lose and still be the default (issue 27)
CALIBRATION_FRAMES = 32
MIN_CALIBRATION_FRAMES = 4
QUANTIZED_OPS = ["Conv", "Clip", "Add", "Mul", "Concat", "MaxPool"]
PERCENTILE = 99.99  # activation ranges: the 99.99th percentile of |x| (MinMax let rare outliers widen the steps)
DECODE_SCOPE = "/decode"  # trainer/model.py's decoding layer: peak finding (MaxPool == heatmap), boxes, TopK


class _Frames:
    """ONNX Runtime's CalibrationDataReader over normalised frames, one batch of one at a time."""

    def __init__(self, input_name: str, frames: np.ndarray) -> None:
        self._input, self._frames = input_name, frames
        self._it: Iterator[np.ndarray] = iter(frames)

    def get_next(self) -> dict[str, np.ndarray] | None:
        frame = next(self._it, None)
        return None if frame is None else {self._input: frame[None].astype(np.float32)}

    def rewind(self) -> None:
        self._it = iter(self._frames)


def frames_for(bundle: Path, package: Dataset, held_out: tuple[str, Dataset] | None, count: int = CALIBRATION_FRAMES,
               ) -> tuple[list[Sample], tuple[str, list[Sample]] | None]:
    """(calibration samples, (name, held-out samples) or None). A bundle with its training folder
    splits the package as training did: calibration from the training part, the comparison on the
    validation part unless another held-out package is given. Without it (the committed demo
    bundle) the package calibrates and only an explicit held-out package can check the result."""
    spec = bundle / "train" / "spec.json"
    train, val = package.samples, None
    if spec.is_file():
        config = json.loads(spec.read_text())["config"]
        train, val = split_dataset(package.samples, float(config["val_fraction"]), int(config["seed"]))
    if held_out is not None:
        return train[:count], (held_out[0], held_out[1].samples)
    return train[:count], (("the training package's validation split", val) if val else None)


def float_nodes(graph: Any) -> list[str]:
    """Nodes that stay float: the stem (stem_nodes), the decoding (a quantised heatmap makes plateaus
    of equal peaks, and the small test model fell from 0.86 to 0.03 mAP@0.5 with it quantised) and
    the heads, the convolutions from which no path reaches another quantised backbone operator."""
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def in_decode(node: Any) -> bool:
        return DECODE_SCOPE in node.name

    def feeds_backbone(node: Any) -> bool:
        seen, todo = set(), list(node.output)
        while todo:
            for nxt in consumers.get(todo.pop(), []):
                if nxt.name in seen or in_decode(nxt):
                    continue
                if nxt.op_type in QUANTIZED_OPS:
                    return True
                seen.add(nxt.name)
                todo.extend(nxt.output)
        return False

    stem = stem_nodes(graph)
    return [n.name for n in graph.node if n.name in stem or in_decode(n) or (n.op_type == "Conv" and not feeds_backbone(n))]


def stem_nodes(graph: Any) -> set[str]:
    """The nodes before the first pointwise (1x1) convolution: the stem's 3-channel convolution
    and MobileNetV2's first depthwise one, at half the input's resolution. ONNX Runtime's integer
    kernels run these narrow 3x3 convolutions slower than its float ones (on the demo model 6.4 +
    3.6 ms in INT8 against 2.8 + 2.5 ms float a pass), so the INT8 chain starts at the first 1x1
    (bench/speed_compare.py; the whole INT8 pass went 40.0 -> 35.5 ms CPU on one thread)."""
    inits = {i.name: i for i in graph.initializer}
    out: set[str] = set()
    for node in graph.node:
        weights = inits.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        if weights is not None and list(weights.dims[2:]) == [1, 1]:
            return out
        out.add(node.name)
    return set()  # no pointwise convolution at all: not the backbone this rule is for


def quantize_onnx(float_model: Path, frames: np.ndarray) -> bytes:
    """model.onnx -> INT8 QDQ ONNX bytes, activation ranges calibrated on `frames` [N, h, w, 3]."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(frames) < MIN_CALIBRATION_FRAMES:
        raise ExportError(f"INT8 calibration needs at least {MIN_CALIBRATION_FRAMES} frames, the package gave {len(frames)}")
    graph = onnx.load(str(float_model), load_external_data=False).graph
    input_name, keep_float = graph.input[0].name, float_nodes(graph)
    with tempfile.TemporaryDirectory(prefix="scopehive-int8-") as tmp:
        prepared, out = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        try:
            # The batch dimension is free (scoring batches, the device feeds one): no symbolic shapes.
            quant_pre_process(str(float_model), str(prepared), skip_symbolic_shape=True)
            quantize_static(str(prepared), str(out), _Frames(input_name, frames), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                            op_types_to_quantize=QUANTIZED_OPS, nodes_to_exclude=keep_float,
                            calibrate_method=CalibrationMethod.Percentile, extra_options={"CalibPercentile": PERCENTILE})
        except Exception as exc:  # onnxruntime.quantization raises bare exceptions of many kinds
            raise ExportError(f"ONNX Runtime could not quantise {float_model.name}: {exc}") from exc
        return out.read_bytes()


def _summary(figures: dict[str, Any]) -> dict[str, Any]:
    """What the bundle keeps of one model's held-out score."""
    count = figures["count_error"]
    return {"map50": figures["map50"], "map50_95": figures["map50_95"],
            "per_class_map50": {k: v["map50"] for k, v in figures["per_class"].items()},
            "count_mae": count["total_mae"], "count_exact_share": count.get("total_exact_share"),
            "precision": figures.get("precision"), "recall": figures.get("recall")}


def compare_held_out(bundle: Path, samples: list[Sample], held_out: str) -> dict[str, Any]:
    """Float and INT8 scored on the same held-out frames at the bundle's thresholds (what the device
    counts), and how far the INT8 counts are from the float model's, image by image."""
    from trainer.counts import count_agreement
    from trainer.scoring import score_bundle_kept

    card = read_card(bundle)
    flt = score_bundle_kept(bundle, samples)
    q = score_bundle_kept(bundle, samples, model_file=INT8_FILE)
    agreement = count_agreement(flt.kept, q.kept, card.classes)
    return {"held_out": held_out, "images": len(samples), "float": _summary(flt.figures), "int8": _summary(q.figures),
            "map50_loss": flt.figures["map50"] - q.figures["map50"],
            "counts_vs_float": {"mae": agreement["total_mae"], "exact_share": agreement["total_exact_share"]}}


def verdict(comparison: dict[str, Any] | None, max_loss: float) -> tuple[bool, str]:
    """(default?, why): INT8 is the default only when the held-out mAP@0.5 it loses is at most `max_loss`."""
    if comparison is None:
        return False, "not checked on held-out frames (give --held-out, or a bundle with its training folder)"
    loss, flt, q = comparison["map50_loss"], comparison["float"]["map50"], comparison["int8"]["map50"]
    where = f"on {comparison['images']} held-out images of {comparison['held_out']}"
    if loss > max_loss:
        return False, (f"not the default: it loses {loss:.3f} mAP@0.5 {where} ({flt:.3f} -> {q:.3f}), "
                       f"more than the {max_loss:.3f} allowed; the device runs the float model")
    return True, f"the default on CPU: mAP@0.5 {q:.3f} vs {flt:.3f} float {where} (loss {loss:.3f} <= {max_loss:.3f})"


def add_int8(bundle: Path, calibration: np.ndarray, held_out: tuple[str, list[Sample]] | None,
             max_loss: float = MAX_MAP50_LOSS) -> Int8Spec:
    """Quantise the bundle's model.onnx into model.int8.onnx, score both on the held-out frames and
    record it in model.json (int8, and metrics.int8 with the comparison). model.onnx is untouched."""
    card = read_card(bundle)
    data = quantize_onnx(bundle / "model.onnx", calibration)
    tmp = bundle / f".{INT8_FILE}.tmp"
    tmp.write_bytes(data)
    tmp.replace(bundle / INT8_FILE)
    comparison = compare_held_out(bundle, held_out[1], held_out[0]) if held_out else None
    default, reason = verdict(comparison, max_loss)
    spec = Int8Spec(file=INT8_FILE, default=default, reason=reason, max_map50_loss=max_loss,
                    calibration_frames=int(len(calibration)))
    card.int8 = spec
    card.format_version = max(card.format_version, 3)  # format 3: a device that knows int8 (older ones say "update")
    if comparison is not None:
        card.metrics["int8"] = comparison
    write_card(bundle, card)  # model.json last: the file it names is already in place
    return spec


def drop_int8(bundle: Path) -> bool:
    """Forget the INT8 model (after model.onnx was re-exported it no longer matches); True if there was one."""
    card = read_card(bundle)
    if card.int8 is None:
        return False
    card.int8 = None
    card.metrics.pop("int8", None)
    write_card(bundle, card)
    (bundle / INT8_FILE).unlink(missing_ok=True)
    return True
