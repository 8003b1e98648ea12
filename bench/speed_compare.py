"""Benchmark: issue 27's speed figures in one run: float vs INT8 of the demo model (960x704 input)
and of a small model (320x256 input, tiles), side by side, in alternating repeats, wall beside CPU.

Per model and precision: one network pass and one 1280x960 synthetic frame bare (fit, normalise,
inference, decode: Detector.detect); the whole device loop on the same frames (build_device with
the config's defaults: drift alarms and the review inbox on; and once with `drift.enabled=false`,
`inbox.enabled=false`), its FPS and CPU per frame, and the loop overhead = (loop CPU - bare CPU) /
loop CPU per frame; and speed per pixel of a network pass against YOLOv8n (bench/yolo_per_pixel.py:
built from its architecture in Keras, random weights, nothing downloaded), float and INT8.

The small model is the tests' short run (tests/trainer/conftest.py SMALL_RUN: 32 synthetic
320x240 frames, 10 epochs; --quick: 3 epochs) trained with the trainer's own code and exported to
ONNX and INT8 (`trainer export --int8`, calibrated on its synthetic training frames) into the work
folder, in a child process (TensorFlow in this one skewed the timings). The demo bundle is the
committed one with its INT8 model. CPU time is the process's (every thread), per frame or pass.

    flock /tmp/scopehive-cpu.lock .venv/bin/python bench/speed_compare.py [--quick] [--repeats 5]
        [--loop-frames 40] [--work DIR]

About 6-7 minutes on 2 cores (--quick: about 3); the YOLOv8n graphs are built once into var/bench/yolo/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import yolo_per_pixel
from device_common import DEMO_BUNDLE, ReplaySource, synthetic_frames
from device_loop import runtime_for
from speed_int8 import (
    as_fed,
    clock,
    detectors_for,
    export_int8,
    float_copy,
    print_int8_card,
    small_bundle,
)

from device.inference.detector import Detector
from device.inference.onnx_backend import cores_here, intra_op_threads
from device.models.bundle import load_bundle
from device.runtime import Runtime

LOOPS: dict[str, dict[str, Any]] = {"defaults": {}, "drift+inbox off": {"drift": {"enabled": False}, "inbox": {"enabled": False}}}
WARM_FRAMES = 5


@dataclass
class Subject:
    """One model at one precision: its bare detector and one device runtime per loop config."""

    model: str
    precision: str
    detector: Detector
    runtimes: dict[str, Runtime]
    done: dict[str, int] = field(default_factory=dict)  # frames each runtime has processed (run() counts on)

    @property
    def label(self) -> str:
        return f"{self.model} {self.precision}"

    def input_hw(self) -> tuple[int, int]:
        spec = self.detector.card.input
        return spec.height, spec.width


def build_small(work: Path, epochs: int) -> Path:
    """The small bundle with its INT8 model, built in a child process (see the module docstring)."""
    if not (work / "small" / "model.int8.onnx").is_file():
        subprocess.run([sys.executable, __file__, "--build-small", str(work), "--epochs", str(epochs)], check=True)
    return work / "small"


def yolo_files() -> dict[str, Path]:
    """YOLOv8n float and INT8 ONNX, built once by yolo_per_pixel.py in a child process."""
    files = {"fp32": yolo_per_pixel.WORK / "yolov8n.onnx", "int8": yolo_per_pixel.WORK / "yolov8n.int8.onnx"}
    if not files["int8"].is_file():
        subprocess.run([sys.executable, yolo_per_pixel.__file__, "--build-only"], check=True)
    return files


def subjects_for(model: str, bundle: Path, frames: list[np.ndarray], work: Path) -> list[Subject]:
    """fp32 runs a copy without model.int8.onnx (the device picks INT8 on CPU when the card allows)."""
    bundles = {"fp32": float_copy(bundle, work), "int8": bundle}
    out = []
    for precision, detector in detectors_for(bundle).items():
        runtimes = {name: runtime_for(bundles[precision], ReplaySource(frames), settings) for name, settings in LOOPS.items()}
        for runtime in runtimes.values():
            runtime.run(max_frames=WARM_FRAMES)
        out.append(Subject(model, precision, detector, runtimes, dict.fromkeys(runtimes, WARM_FRAMES)))
    return out


def loop_backend(runtime: Runtime) -> str:
    detector = runtime.parts.feed.pipelines[0].slot.detector
    return detector.backend_name if detector is not None else "none"


def random_feed(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (1, h, w, 3)).astype(np.float32)


def loop_clock(subject: Subject, name: str, n: int) -> tuple[float, float, float]:
    """(FPS wall, wall ms, CPU ms) per frame over the next `n` frames of one runtime."""
    subject.done[name] += n
    wall, cpu = time.perf_counter(), time.process_time()
    subject.runtimes[name].run(max_frames=subject.done[name])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, wall * 1e3 / n, cpu * 1e3 / n


def one_round(subjects: list[Subject], yolo: dict[str, Any], frames: list[np.ndarray], args: argparse.Namespace,
              runs: dict[tuple[str, str], list[tuple[float, ...]]]) -> None:
    """Every measurement once, one subject after another, so all see the same load."""
    for s in subjects:
        runs.setdefault((s.label, "pass"), []).append(clock(s.detector.backend.run, [as_fed(s.detector, random_feed(*s.input_hw()))] * args.passes))
        runs.setdefault((s.label, "frame"), []).append(clock(s.detector.detect, frames))
        for name in s.runtimes:
            runs.setdefault((s.label, name), []).append(loop_clock(s, name, args.loop_frames))
    for key, (session, feed) in yolo.items():
        runs.setdefault((f"YOLOv8n {key}", "pass"), []).append(clock(partial(session.run, None), [feed] * args.passes))


def median(runs: dict[tuple[str, str], list[tuple[float, ...]]], label: str, what: str) -> np.ndarray:
    return np.median(np.asarray(runs[(label, what)]), axis=0)


def print_bare(subjects: list[Subject], runs: dict[tuple[str, str], list[tuple[float, ...]]]) -> None:
    print("\n| model | input | precision | pass wall | pass CPU | frame wall (bare) | frame CPU (bare) | bare FPS of CPU |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in subjects:
        (pw, pc), (fw, fc) = median(runs, s.label, "pass"), median(runs, s.label, "frame")
        h, w = s.input_hw()
        print(f"| {s.model} | {w}x{h} {s.detector.card.input.resize} | {s.precision} | {pw:.1f} ms | {pc:.1f} ms "
              f"| {fw:.1f} ms | {fc:.1f} ms | {1000 / fc:.1f} |")


def print_loop(subjects: list[Subject], runs: dict[tuple[str, str], list[tuple[float, ...]]],
               backends: dict[tuple[str, str], str]) -> None:
    print("\n| model | precision | loop config | backend | FPS (wall) | wall ms/frame | CPU ms/frame | bare CPU ms/frame "
          "| loop overhead |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in subjects:
        bare_cpu = median(runs, s.label, "frame")[1]
        for name in s.runtimes:
            fps, wall, cpu = median(runs, s.label, name)
            print(f"| {s.model} | {s.precision} | {name} | {backends[(s.label, name)]} | {fps:.1f} | {wall:.1f} | {cpu:.1f} "
                  f"| {bare_cpu:.1f} | {100 * (cpu - bare_cpu) / cpu:.1f} % |")


def print_per_pixel(subjects: list[Subject], runs: dict[tuple[str, str], list[tuple[float, ...]]]) -> None:
    """Network pass per megapixel of input; ratio > 1: faster per pixel than that YOLOv8n."""
    size = yolo_per_pixel.YOLO_SIZE
    rows = [(s.label, *s.input_hw()) for s in subjects] + [(f"YOLOv8n {k}", size, size) for k in ("fp32", "int8")]
    per_mp = {label: median(runs, label, "pass") * 1e3 / (h * w / 1e6) for label, h, w in rows}  # (wall, CPU) us/MP
    print("\n| model | input | pass CPU | CPU us/MP | wall us/MP | vs YOLOv8n fp32 (CPU; wall) | vs YOLOv8n int8 (CPU; wall) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, h, w in rows:
        wall, cpu = per_mp[label]
        ratios = [f"{per_mp[y][1] / cpu:.2f}x; {per_mp[y][0] / wall:.2f}x" for y in ("YOLOv8n fp32", "YOLOv8n int8")]
        print(f"| {label} | {w}x{h} | {median(runs, label, 'pass')[1]:.1f} ms | {cpu:.0f} | {wall:.0f} | {ratios[0]} | {ratios[1]} |")


def yolo_sessions(threads: int) -> dict[str, Any]:
    size = yolo_per_pixel.YOLO_SIZE
    out = {}
    for key, path in yolo_files().items():
        session = yolo_per_pixel.session(path, threads)
        feed = {session.get_inputs()[0].name: random_feed(size, size)}
        for _ in range(2):
            session.run(None, feed)  # warm-up: allocations and the first-run graph work
        out[key] = (session, feed)
    return out


def describe(subjects: list[Subject], args: argparse.Namespace, yolo_params: str) -> None:
    threads = intra_op_threads(cores_here())
    print(f"\n{cores_here()} cores, {threads} ONNX Runtime intra-op threads (the device's rule), frames 1280x960 synthetic; "
          f"medians of {args.repeats} alternating rounds: {args.passes} passes, {args.frames} bare frames, "
          f"{args.loop_frames} loop frames per config; YOLOv8n: {yolo_params}")
    for s in subjects:
        print(f"{s.label}: {s.detector.backend_name}, {s.detector.backend.layout}")  # type: ignore[attr-defined]
        if s.precision == "int8":
            training = s.detector.card.metrics.get("training")
            trained = f", trained {training['epochs_run']} epochs (not random weights)" if training else ""
            print(f"{s.model}: {s.detector.card.label}{trained}")
            print_int8_card(s.detector.card)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 20 loop frames, small model 3 epochs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loop-frames", type=int, default=40)
    parser.add_argument("--frames", type=int, default=6, help="bare frames per round")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None, help="keep (and reuse) the small model here (default: a temp dir)")
    parser.add_argument("--build-small", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=None, help="small model's epochs (default: the tests' 10; --quick 3)")
    args = parser.parse_args()
    if args.build_small:
        small, package = small_bundle(args.build_small, args.epochs)
        export_int8(small, package, None)
        return
    if args.quick:
        args.repeats, args.loop_frames, args.epochs = 3, 20, args.epochs or 3
    work = args.work or Path(tempfile.mkdtemp(prefix="scopehive-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    start_load, started = os.getloadavg(), time.monotonic()
    small = build_small(work, args.epochs or 10)
    yolo = yolo_sessions(intra_op_threads(cores_here()))
    frames = synthetic_frames(args.frames)
    subjects = subjects_for("demo", DEMO_BUNDLE, frames, work) + subjects_for("small", small, frames, work)
    runs: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    measuring = time.monotonic()
    for _ in range(args.repeats):
        one_round(subjects, yolo, frames, args, runs)
    backends = {(s.label, name): loop_backend(r) for s in subjects for name, r in s.runtimes.items()}  # before shutdown clears the slots
    for s in subjects:
        for runtime in s.runtimes.values():
            runtime.shutdown()
    counts = json.loads(yolo_files()["fp32"].with_suffix(".json").read_text())
    describe(subjects, args, f"random weights, {counts['trainable']:,} trainable parameters, built from its architecture")
    print_bare(subjects, runs)
    print_loop(subjects, runs, backends)
    print_per_pixel(subjects, runs)
    print(f"\nload average at start {' '.join(f'{v:.2f}' for v in start_load)}, at end "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; measuring {(time.monotonic() - measuring) / 60:.1f} min, "
          f"whole run {(time.monotonic() - started) / 60:.1f} min; small model: {load_bundle(small).card.label}")


if __name__ == "__main__":
    main()
