"""Benchmark: what laying the model out for this CPU buys a whole frame (device/inference/cpu_layout.py).

The demo bundle's Detector (fit, normalise, inference, decode of a 1280x960 synthetic frame), float
and INT8, each three ways: as exported, padded only (channel groups to the CPU's block; INT8 is
never padded), and padded + NCHW input (what the device runs). Alternating rounds, medians of the
process CPU time per frame (wall beside it), 2 intra-op threads as the device picks on 2 cores.

    flock /tmp/scopehive-cpu.lock .venv/bin/python bench/cpu_layout.py [--rounds 8] [--frames 6]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from device_common import DEMO_BUNDLE

import device.inference.onnx_backend as onnx_backend
from device.inference import cpu_layout
from device.inference.detector import Detector
from device.models.bundle import load_bundle
from device.sources.synthetic import SyntheticMicroscope

WAYS = {"as exported": None, "padded": False, "padded + NCHW (the device)": True}  # nchw flag; None: no layout


def detectors(cache: Path) -> dict[str, Detector]:
    bundle = load_bundle(DEMO_BUNDLE)
    block = cpu_layout.conv_block()
    out = {}
    for precision in ("float", "int8"):
        for way, nchw in WAYS.items():
            if nchw is None:
                onnx_backend.conv_block = lambda: None  # type: ignore[assignment]
            else:
                onnx_backend.conv_block = lambda: block  # type: ignore[assignment]
                onnx_backend.laid_out = (lambda p, c, b, nchw=nchw: cpu_layout.laid_out(p, c, b, nchw=nchw))  # type: ignore[assignment,misc]
            detector = Detector(bundle, onnx_backend.OnnxBackend(bundle, cache / way, precision=precision))  # type: ignore[arg-type]
            detector.warm_up()
            out[f"{precision}, {way}"] = detector
            print(f"{precision:5s} {way:28s} feeds {detector.input_spec.layout}: {detector.backend.layout}")  # type: ignore[attr-defined]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--frames", type=int, default=6)
    args = parser.parse_args()
    print(f"CPU block: {cpu_layout.conv_block()}")
    frames = [SyntheticMicroscope(seed=i, width=1280, height=960).read().image for i in range(args.frames)]
    with tempfile.TemporaryDirectory(prefix="scopehive-layout-") as tmp:
        subjects = detectors(Path(tmp))
        cpu: dict[str, list[float]] = {k: [] for k in subjects}
        wall: dict[str, list[float]] = {k: [] for k in subjects}
        for _ in range(args.rounds):
            for key, detector in subjects.items():
                c, w = time.process_time(), time.perf_counter()
                for frame in frames:
                    detector.detect(frame)
                cpu[key].append((time.process_time() - c) * 1e3 / len(frames))
                wall[key].append((time.perf_counter() - w) * 1e3 / len(frames))
    print(f"\nbare frame (1280x960 -> boxes), medians of {args.rounds} alternating rounds of {args.frames} frames")
    for key in subjects:
        print(f"  {key:40s} {statistics.median(cpu[key]):6.1f} ms CPU  {statistics.median(wall[key]):6.1f} ms wall"
              f"  (CPU {min(cpu[key]):.1f}-{max(cpu[key]):.1f})")


if __name__ == "__main__":
    main()
