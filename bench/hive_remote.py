"""Benchmark: local inference vs a hive server (Triton via PyTriton, `python -m trainer serve`)
on loopback, with the preprocessed tensor and with JPEG on the wire.

Prints per mode: frames/s, p50/p95 latency of one frame (preprocess + network + inference +
decode), bytes sent per frame, and whether the counts equal the local model's. On one machine the
server competes with the client for the same cores: this measures the protocol's overhead, not
a GPU server's speed. Needs the hive environment (`make hive-env`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from device_common import bench_bundle, synthetic_frames

from device.hive.names import triton_model_name
from device.hive.settings import HiveSettings
from device.inference.backend import BackendContext
from device.inference.detector import Detector, load_detector
from device.models.bundle import load_bundle
from tests.device.hive.server import HiveServer


def measure(detector: Detector, frames: list[np.ndarray], n: int) -> tuple[float, float, float, list[int], float]:
    """(fps, p50 ms, p95 ms, counts of the first len(frames) frames, bytes sent per frame)."""
    latencies, counts, sent = [], [], []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        run = detector.analyse(frames[i % len(frames)])
        found = run.detections
        latencies.append((time.perf_counter() - t0) * 1000)
        if i < len(frames):
            counts.append(len(found))
        sent.append(float(run.fields.get("bytes_sent", 0)))
    fps = n / (time.perf_counter() - start)
    return fps, float(np.percentile(latencies, 50)), float(np.percentile(latencies, 95)), counts, float(np.mean(sent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=100)
    args = parser.parse_args()
    bundle, what = bench_bundle()
    card = load_bundle(bundle).card
    print(f"model: {what}, input {card.input.width}x{card.input.height}; frames 1280x960 synthetic")
    frames = synthetic_frames(10)
    cache = Path(tempfile.mkdtemp(prefix="bench-hive-"))
    local = load_detector(bundle, "onnx", cache)
    fps, p50, p95, reference, _ = measure(local, frames, args.frames)
    print(f"{'local (onnx)':24s} {fps:6.1f} FPS  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms")
    name = triton_model_name(card)
    server = HiveServer([bundle], cache / "serve.log").start([name, name + "_jpeg"])
    try:
        for transport, quality in (("tensor", 90), ("jpeg", 90), ("jpeg", 95)):
            settings = HiveSettings(endpoints=[server.url], transport=transport, jpeg_quality=quality, deadline_ms=10_000)  # type: ignore[call-arg]
            remote = load_detector(bundle, "triton", cache, None, BackendContext(settings))
            fps, p50, p95, counts, sent = measure(remote, frames, args.frames)
            route = remote.analyse(frames[0]).route
            same = sum(a == b for a, b in zip(counts, reference, strict=True))
            worst = max(abs(a - b) for a, b in zip(counts, reference, strict=True))
            label = f"remote ({transport}{'' if transport == 'tensor' else f' q{quality}'})"
            print(f"{label:24s} {fps:6.1f} FPS  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  {sent / 1024:8.1f} KiB/frame  "
                  f"counts equal on {same}/{len(reference)} frames (largest difference {worst}, of ~{np.mean(reference):.0f})  [{route}]")
            remote.backend.close()  # type: ignore[attr-defined]
    finally:
        server.kill()


if __name__ == "__main__":
    main()
