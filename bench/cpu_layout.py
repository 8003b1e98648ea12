"""Benchmark: what laying the model out for this CPU buys a whole frame (device/inference/cpu_layout.py).

The demo bundle's Detector (fit, normalise, inference, decode of a 1280x960 synthetic frame), float
and INT8, each three ways: as exported, padded only (channel groups to the CPU's block; INT8 is
never padded), and padded + NCHW input (what the device runs). Alternating rounds, medians of the
process CPU time per frame (wall beside it), 2 intra-op threads as the device picks on 2 cores.

    flock /tmp/scopehive-cpu.lock .venv/bin/python bench/cpu_layout.py [--rounds 8] [--frames 6]
"""

from __future__ import annotations

import argparse
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
from device_common import DEMO_BUNDLE
from graph_variants import timed

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
        jobs = {key: partial(_all, detector, frames) for key, detector in subjects.items()}
        figures = timed(jobs, args.rounds, 1)  # alternating rounds: every way sees the same load
    print(f"\nbare frame (1280x960 -> boxes), medians of {args.rounds} alternating rounds of {args.frames} frames")
    for key, (cpu, wall) in figures.items():
        print(f"  {key:40s} {cpu / len(frames):6.1f} ms CPU  {wall / len(frames):6.1f} ms wall")


def _all(detector: Detector, frames: list[np.ndarray]) -> None:
    for frame in frames:
        detector.detect(frame)

if __name__ == "__main__":
    main()
