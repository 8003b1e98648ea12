"""Benchmark: ONNX Runtime vs OpenCV DNN on the CPU for the demo model on 1280x960 frames, and
whether their boxes agree. The faster of the equivalent ones is device.inference.backend.CPU_DEFAULT."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from device_common import bench_bundle, synthetic_frames

from device.inference.backend import CPU_DEFAULT
from device.inference.detector import load_detector
from device.models.bundle import BundleError


def main() -> None:
    bundle, what = bench_bundle()
    print(f"model: {what}")
    frames = synthetic_frames(10)
    results = {}
    for key in ("onnx", "opencv"):
        try:
            detector = load_detector(bundle, key, Path(tempfile.mkdtemp()))
        except BundleError as exc:
            print(f"{key}: cannot run this model ({exc})")
            continue
        outputs = [detector.detect(f) for f in frames]
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < 5:
            detector.detect(frames[n % len(frames)])
            n += 1
        results[key] = (n / (time.perf_counter() - start), outputs)
        print(f"{key} ({detector.backend_name}): {results[key][0]:.1f} frames/s")
    if len(results) == 2:
        a, b = results["onnx"][1], results["opencv"][1]
        same = all(len(x) == len(y) and np.allclose(x.xyxy, y.xyxy, atol=1.0) for x, y in zip(a, b, strict=True))
        fastest = max(results, key=lambda k: results[k][0])
        print(f"outputs equivalent: {same}; faster: {fastest}; configured CPU default: {CPU_DEFAULT}")


if __name__ == "__main__":
    main()
