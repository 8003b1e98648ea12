"""Benchmark: the demo graph's layout and export choices of issue 27, side by side (alternating
rounds, medians, CPU and wall time per 960x704 pass, ONNX Runtime under the device's options).

    .venv/bin/python bench/graph_variants.py [--repeats 6] [--passes 5]

- tf2onnx's graph (upsampling as Tile/Reshape chains; the demo bundle's model.onnx before the
  Resize rewrite, read from git at UPSAMPLING_COMMIT) vs the shipped graph (one Resize each);
- channels as exported vs padded to this CPU's convolution block (device/inference/cpu_layout.py,
  what the device runs for a float model on CPU), and padded + NCHW input;
- NHWC input (shipped) vs NCHW input (the graph's input Transpose cut; outputs checked identical);
- the host's normalisation + float input vs uint8 input with Cast/Mul/Sub folded into the graph
  (each timed with its host preparation of a fitted 960x704 frame);
- YOLOv8n (bench/yolo_per_pixel.py's graph, when built) under ONNX Runtime's default spinning
  pool vs the device's options (spinning off).
Variants are written to var/bench/graph/.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from device.inference.cpu_layout import conv_block, nchw_input, pad_channels  # noqa: E402
from device.inference.onnx_backend import cores_here, intra_op_threads, session_options  # noqa: E402
from device.inference.preprocess import normalize  # noqa: E402
from device.models.bundle import load_bundle  # noqa: E402
from device.sources.synthetic import SyntheticMicroscope  # noqa: E402

DEMO = ROOT / "device" / "models" / "demo"
WORK = ROOT / "var" / "bench" / "graph"
UPSAMPLING_COMMIT = "569dc52^"  # the last commit whose demo model.onnx has tf2onnx's upsampling chains
YOLO = ROOT / "var" / "bench" / "yolo" / "yolov8n.onnx"


def nchw_variant(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph taking NCHW, as the device lays it out (its input Transpose cut)."""
    cut = nchw_input(model)
    assert cut.cut, cut.note
    return cut.model


def uint8_variant(model: onnx.ModelProto, gain: np.ndarray, offset: np.ndarray) -> onnx.ModelProto:
    """The same graph taking RGB uint8: Cast, Mul(gain), Sub(offset) in front of it."""
    graph = model.graph
    name = graph.input[0].name
    inner = "scopehive_normalised"
    for node in graph.node:
        node.input[:] = [inner if i == name else i for i in node.input]
    graph.initializer.extend([numpy_helper.from_array(gain.astype(np.float32), "scopehive_gain"),
                              numpy_helper.from_array(offset.astype(np.float32), "scopehive_offset")])
    front = [helper.make_node("Cast", [name], ["scopehive_cast"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["scopehive_cast", "scopehive_gain"], ["scopehive_scaled"]),
             helper.make_node("Sub", ["scopehive_scaled", "scopehive_offset"], [inner])]
    for i, node in enumerate(front):
        graph.node.insert(i, node)
    graph.input[0].type.tensor_type.elem_type = TensorProto.UINT8
    return model


def session(path: Path, threads: int, spinning: bool = False):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    if spinning:  # ONNX Runtime's defaults, as bench/yolo_per_pixel.py had them before 2026-12-03
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    else:
        options = session_options(threads)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def timed(jobs: dict[str, Callable[[], object]], repeats: int, passes: int) -> dict[str, tuple[float, float]]:
    """Median (CPU ms, wall ms) per call of each job, in alternating rounds."""
    for job in jobs.values():
        job()
        job()  # warm-up
    cpu: dict[str, list[float]] = {k: [] for k in jobs}
    wall: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(repeats):
        for key, job in jobs.items():
            c, w = time.process_time(), time.perf_counter()
            for _ in range(passes):
                job()
            cpu[key].append((time.process_time() - c) * 1e3 / passes)
            wall[key].append((time.perf_counter() - w) * 1e3 / passes)
    return {k: (statistics.median(cpu[k]), statistics.median(wall[k])) for k in jobs}


def report(title: str, figures: dict[str, tuple[float, float]]) -> None:
    print(f"\n{title}")
    for key, (cpu, wall) in figures.items():
        print(f"  {key:<44} {cpu:7.1f} ms CPU {wall:7.1f} ms wall")


def tf2onnx_graph() -> Path | None:
    out = WORK / "demo.tf2onnx.onnx"
    if not out.is_file():
        try:
            data = subprocess.run(["git", "show", f"{UPSAMPLING_COMMIT}:device/models/demo/model.onnx"], cwd=ROOT,
                                  check=True, capture_output=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
        out.write_bytes(data)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    threads = intra_op_threads(cores_here())
    bundle = load_bundle(DEMO)
    spec, norm = bundle.card.input, bundle.card.normalization
    frame = SyntheticMicroscope(seed=1, width=spec.width, height=spec.height).read().image  # already at the input size
    nhwc = normalize(frame, spec, norm)
    shipped = session(DEMO / "model.onnx", threads)
    name = shipped.get_inputs()[0].name
    print(f"{cores_here()} cores, {threads} intra-op threads, load average {os.getloadavg()[0]:.1f}; "
          f"medians of {args.repeats} alternating rounds of {args.passes} passes")

    before = tf2onnx_graph()
    if before is None:
        print("\ntf2onnx graph vs Resize: skipped (needs git history: git show " + UPSAMPLING_COMMIT + ")")
    else:
        old = session(before, threads)
        report("upsampling: tf2onnx's Tile/Reshape chains vs one Resize (float pass)", timed({
            "tf2onnx graph": lambda: old.run(None, {name: nhwc}),
            "shipped graph (Resize)": lambda: shipped.run(None, {name: nhwc})}, args.repeats, args.passes))

    block = conv_block()
    if block is None:
        print("\nchannel padding: skipped (this CPU has no blocked convolution layout)")
    else:
        padding = pad_channels(onnx.load(str(DEMO / "model.onnx")), block)
        padded_path, padded_nchw_path = WORK / f"demo.c{block}.onnx", WORK / f"demo.c{block}.nchw.onnx"
        onnx.save(padding.model, str(padded_path))
        onnx.save(nchw_variant(padding.model), str(padded_nchw_path))
        padded, padded_nchw = session(padded_path, threads), session(padded_nchw_path, threads)
        nchw_feed = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
        diff = max(float(np.abs(a - b).max()) for a, b in zip(shipped.run(None, {name: nhwc}), padded.run(None, {name: nhwc}), strict=True))
        report(f"channels: as exported vs {padding.groups} groups padded to {block} (float pass; largest output difference {diff:.1e})", timed({
            "as exported (shipped)": lambda: shipped.run(None, {name: nhwc}),
            f"padded to {block} (what the device runs)": lambda: padded.run(None, {name: nhwc}),
            f"padded to {block} + NCHW input": lambda: padded_nchw.run(None, {name: nchw_feed})}, args.repeats, args.passes))

    nchw_path = WORK / "demo.nchw.onnx"
    onnx.save(nchw_variant(onnx.load(str(DEMO / "model.onnx"))), str(nchw_path))
    nchw = session(nchw_path, threads)
    nchw_in = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
    same = all(np.array_equal(a, b) for a, b in zip(shipped.run(None, {name: nhwc}), nchw.run(None, {name: nchw_in}), strict=True))
    report(f"input layout (float pass; outputs identical: {same})", timed({
        "NHWC (shipped; the graph transposes)": lambda: shipped.run(None, {name: nhwc}),
        "NCHW (Transpose cut)": lambda: nchw.run(None, {name: nchw_in})}, args.repeats, args.passes))

    std = np.asarray(norm.std, np.float32)
    gain, offset = np.float32(norm.scale) / std, np.asarray(norm.mean, np.float32) / std
    u8_path = WORK / "demo.uint8.onnx"
    onnx.save(uint8_variant(onnx.load(str(DEMO / "model.onnx")), gain, offset), str(u8_path))
    u8 = session(u8_path, threads)
    import cv2

    rgb8 = lambda: cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)[None]  # noqa: E731
    diff = max(float(np.abs(a - b).max()) for a, b in zip(shipped.run(None, {name: nhwc}), u8.run(None, {name: rgb8()}), strict=True)
               if a.dtype.kind == "f")
    report(f"normalisation, host preparation + pass (largest output difference {diff:.1e})", timed({
        "host normalise + float input (shipped)": lambda: shipped.run(None, {name: normalize(frame, spec, norm)}),
        "uint8 input, Cast/Mul/Sub in the graph": lambda: u8.run(None, {name: rgb8()})}, args.repeats, args.passes))
    report("host preparation alone", timed({
        "normalise (colour swap + float)": lambda: normalize(frame, spec, norm),
        "uint8 colour swap": rgb8}, args.repeats, args.passes * 4))

    if not YOLO.is_file():
        print(f"\nYOLOv8n spinning: skipped ({YOLO} not built: run bench/yolo_per_pixel.py --build-only)")
        return
    spin, quiet = session(YOLO, threads, spinning=True), session(YOLO, threads)
    feed = {quiet.get_inputs()[0].name: np.random.default_rng(0).uniform(-1, 1, (1, 640, 640, 3)).astype(np.float32)}
    report("YOLOv8n float pass: ONNX Runtime's default (spinning) vs the device's options", timed({
        "spinning pool (default)": lambda: spin.run(None, feed),
        "device options (spinning off)": lambda: quiet.run(None, feed)}, args.repeats, args.passes))


if __name__ == "__main__":
    main()
