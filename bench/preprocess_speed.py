"""Benchmark: the device's normalisation (BGR->RGB, float32, scale/mean) before and after issue 27,
on the demo model's 960x704 input fitted from 1280x960 synthetic frames, in alternating repeats,
CPU time beside wall time (wall swings with the shared box's load; CPU time per call does not)."""

from __future__ import annotations

import os
import time

import numpy as np
from device_common import DEMO_BUNDLE, synthetic_frames

from device.inference.preprocess import fit, normalize
from device.models.bundle import InputSpec, Normalization, load_bundle

REPEATS, CALLS = 5, 20


def numpy_normalize(image: np.ndarray, spec: InputSpec, norm: Normalization) -> np.ndarray:
    """The normalisation before issue 27: a reversed-stride view, astype, broadcast multiply-subtract."""
    if spec.color == "RGB":
        image = image[:, :, ::-1]
    std = np.asarray(norm.std, np.float32)
    tensor = image.astype(np.float32) * (np.float32(norm.scale) / std) - np.asarray(norm.mean, np.float32) / std
    if spec.layout == "NCHW":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor[None])


def timed(fn, image, spec, norm) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(wall ms, CPU ms) per call over CALLS calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(CALLS):
        fn(image, spec, norm)
    return (time.perf_counter() - wall) * 1e3 / CALLS, (time.process_time() - cpu) * 1e3 / CALLS


def main() -> None:
    card = load_bundle(DEMO_BUNDLE).card
    frame = synthetic_frames(1)[0]
    for layout in ("NHWC", "NCHW"):
        spec = card.input.model_copy(update={"layout": layout, "resize": "stretch"})
        image, _ = fit(frame, spec)
        diff = float(np.abs(normalize(image, spec, card.normalization) - numpy_normalize(image, spec, card.normalization)).max())
        runs: dict[str, list[tuple[float, float]]] = {"before (numpy)": [], "after (OpenCV)": []}
        for _ in range(REPEATS):  # alternating, so both see the same load
            runs["before (numpy)"].append(timed(numpy_normalize, image, spec, card.normalization))
            runs["after (OpenCV)"].append(timed(normalize, image, spec, card.normalization))
        print(f"{spec.width}x{spec.height} {layout}, max abs difference {diff:.1e}")
        for name, values in runs.items():
            wall, cpu = np.median(np.asarray(values), axis=0)
            print(f"  {name:15s} wall {wall:6.2f} ms  CPU {cpu:6.2f} ms  (median of {REPEATS}x{CALLS})")
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
