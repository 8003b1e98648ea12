"""Benchmark: float vs INT8 (trainer export --int8) side by side, in alternating repeats, CPU time
beside wall time: the demo model (960x704 input) and a small model (320x256 input, tiles) on
1280x960 synthetic frames, per network pass and per frame (fit, normalise, inference, decode);
then the whole device loop float vs INT8, and ONNX Runtime intra-op threads 1..cores for the demo model. The INT8 models' held-out mAP and
count agreement beside the float ones come from what export --int8 recorded in model.json.

    flock /tmp/scopehive-cpu.lock .venv/bin/python bench/speed_int8.py [--small BUNDLE --small-package PKG]

Without --small it trains the small model first (the tests' short run, about two minutes; needs
TensorFlow). Work files go to var/bench/int8/. CPU time is the process's (every thread), per frame.
bench/speed_compare.py is the one-run comparison (both models, the loop with its overhead, YOLOv8n per
pixel) and reuses these helpers; this script keeps the intra-op thread sweep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
from device_common import DEMO_BUNDLE, ROOT, synthetic_frames

from device.inference.detector import Detector
from device.inference.onnx_backend import OnnxBackend, cores_here, intra_op_threads
from device.models.bundle import ModelCard, load_bundle

WORK = ROOT / "var" / "bench" / "int8"


def export_int8(bundle: Path, package: Path, held_out: Path | None) -> None:
    from trainer.cli import main

    args = ["export", str(bundle), "--int8", "--package", str(package)]
    if main(args + (["--held-out", str(held_out)] if held_out else [])) != 0:
        raise SystemExit(f"export --int8 failed for {bundle}")


def demo_bundle() -> Path:
    """A copy of the demo bundle with its INT8 model, calibrated on frames drawn as `make demo-model`
    draws its training package, compared on the same held-out package (seed 909)."""
    from device.datasets.package import write_synthetic_package

    if load_bundle(DEMO_BUNDLE).card.int8 is not None:
        return DEMO_BUNDLE  # committed with its INT8 model (make demo-model)
    out = WORK / "demo"
    if not (out / "model.int8.onnx").is_file():
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(DEMO_BUNDLE, out)
        write_synthetic_package(WORK / "demo-train.zip", 40, seed=21, width=640, height=480, density=60)
        write_synthetic_package(WORK / "demo-held-out.zip", 60, seed=909, width=640, height=480)
        export_int8(out, WORK / "demo-train.zip", WORK / "demo-held-out.zip")
    return out


def small_bundle(work: Path = WORK, epochs: int | None = None) -> tuple[Path, Path]:
    """The tests' small model (320x256 input, tiles), trained once into `work`, and its package;
    `epochs` shortens the tests' run (10 epochs)."""
    from device.datasets.package import write_synthetic_package
    from tests.trainer.conftest import SMALL_RUN, SMALL_SCENE
    from trainer.config import TrainConfig
    from trainer.pipeline import train_bundle

    out, package = work / "small", work / "small-train.zip"
    if not (out / "model.json").is_file():
        write_synthetic_package(package, count=32, seed=11, **SMALL_SCENE)  # type: ignore[arg-type]
        config = TrainConfig(**{**SMALL_RUN, **({"epochs": epochs} if epochs else {})})  # type: ignore[arg-type]
        train_bundle(package, out, config, force=True, quiet=True)
    return out, package


def as_fed(detector: Detector, nhwc: np.ndarray) -> np.ndarray:
    """An NHWC batch in the layout the detector's session takes (NCHW once laid out for this CPU),
    so a timed pass does not include the transposition the backend would otherwise do."""
    return np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)) if detector.input_spec.layout == "NCHW" else nhwc


def clock(fn, items: list) -> tuple[float, float]:  # type: ignore[no-untyped-def,type-arg]
    """(wall ms, CPU ms) per item."""
    wall, cpu = time.perf_counter(), time.process_time()
    for item in items:
        fn(item)
    return (time.perf_counter() - wall) * 1e3 / len(items), (time.process_time() - cpu) * 1e3 / len(items)


def detectors_for(bundle: Path, threads: int | None = None) -> dict[str, Detector]:
    loaded = load_bundle(bundle)
    out = {}
    for precision in ("float", "int8"):
        detector = Detector(loaded, OnnxBackend(loaded, WORK, precision=precision, threads=threads))  # type: ignore[arg-type]
        detector.warm_up()
        out["fp32" if precision == "float" else "int8"] = detector
    return out


def compare(name: str, bundle: Path, frames: list[np.ndarray], repeats: int) -> None:
    detectors = detectors_for(bundle)
    card = detectors["fp32"].card
    spec = card.input
    tensor = np.zeros((1, spec.height, spec.width, 3), np.float32)
    runs: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in detectors}
    for _ in range(repeats):  # alternating: both models see the same load
        for key, detector in detectors.items():
            passes = clock(detector.backend.run, [as_fed(detector, tensor)] * 4)
            per_frame = clock(detector.detect, frames)
            runs[key].append((*passes, *per_frame))
    print(f"\n{name}: {spec.width}x{spec.height} input ({spec.resize}), frames 1280x960, "
          f"{cores_here()} cores, {detectors['fp32'].backend.threads} intra-op threads; median of {repeats} alternating repeats")  # type: ignore[attr-defined]
    print(f"  {'model':6s} {'pass wall':>10s} {'pass CPU':>9s} {'frame wall':>11s} {'frame CPU':>10s} {'FPS (CPU)':>10s}")
    for key, values in runs.items():
        pw, pc, fw, fc = np.median(np.asarray(values), axis=0)
        print(f"  {key:6s} {pw:8.1f}ms {pc:7.1f}ms {fw:9.1f}ms {fc:8.1f}ms {1000 / fc:10.1f}")
    print_int8_card(card)


def print_int8_card(card: ModelCard) -> None:
    """What export --int8 recorded: held-out float vs INT8, and the device's default."""
    comparison = card.metrics.get("int8")
    if comparison:
        f, q = comparison["float"], comparison["int8"]
        print(f"  held-out ({comparison['images']} images, {comparison['held_out']}): mAP@0.5 float {f['map50']:.3f} "
              f"INT8 {q['map50']:.3f} (loss {comparison['map50_loss']:+.3f}); count MAE float {f['count_mae']:.2f} "
              f"INT8 {q['count_mae']:.2f}; INT8 counts vs float MAE {comparison['counts_vs_float']['mae']:.2f}")
    if card.int8 is not None:
        print(f"  INT8 {'is' if card.int8.default else 'is NOT'} the device's default: {card.int8.reason}")


def float_copy(bundle: Path, work: Path = WORK) -> Path:
    """The same bundle without its INT8 model: what the device ran before (and runs where INT8 was refused)."""
    out = work / f"{bundle.name}-float"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(bundle, out, ignore=shutil.ignore_patterns("model.int8.onnx"))
    card = json.loads((out / "model.json").read_text())
    card.pop("int8", None)
    (out / "model.json").write_text(json.dumps(card))
    return out


def loop_compare(bundle: Path, frames: list[np.ndarray], repeats: int, n: int = 60) -> None:
    """The whole device loop (device_loop.py's runtime: capture thread, quality, outbox, stream) on
    replayed 1280x960 frames, as fast as it goes: float bundle vs the same with INT8."""
    from device_common import ReplaySource
    from device_loop import runtime_for

    runtimes = {"fp32": runtime_for(float_copy(bundle), ReplaySource(frames)), "int8": runtime_for(bundle, ReplaySource(frames))}
    for runtime in runtimes.values():
        runtime.run(max_frames=5)
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in runtimes}
    done = dict.fromkeys(runtimes, 5)
    for _ in range(repeats):
        for key, runtime in runtimes.items():
            done[key] += n
            wall, cpu = time.perf_counter(), time.process_time()
            runtime.run(max_frames=done[key])
            runs[key].append((n / (time.perf_counter() - wall), (time.process_time() - cpu) * 1e3 / n))
    for runtime in runtimes.values():
        runtime.shutdown()
    print(f"\nwhole device loop, demo model, 1280x960 frames, median of {repeats} alternating runs of {n} frames")
    for key, values in runs.items():
        fps, cpu = np.median(np.asarray(values), axis=0)
        print(f"  {key:5s} {fps:5.1f} FPS (wall)  CPU {cpu:6.1f} ms per frame = {1000 / cpu:5.1f} FPS of CPU")


def threads_sweep(bundle: Path, frames: list[np.ndarray], repeats: int) -> None:
    cores = cores_here()
    counts = sorted({1, 2, 4, 8, cores, intra_op_threads(cores)} & set(range(1, cores + 1)))
    detectors = {n: detectors_for(bundle, n) for n in counts}
    runs: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for _ in range(repeats):
        for n, pair in detectors.items():
            for key, detector in pair.items():
                runs.setdefault((n, key), []).append(clock(detector.detect, frames))
    print(f"\nintra-op threads, demo model, per 1280x960 frame ({cores} cores; the device picks {intra_op_threads(cores)})")
    for (n, key), values in runs.items():
        wall, cpu = np.median(np.asarray(values), axis=0)
        print(f"  {n:2d} threads {key:5s} wall {wall:7.1f} ms  CPU {cpu:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=Path, help="small bundle (320x256 input) instead of training one")
    parser.add_argument("--small-package", type=Path, help="its training package (calibrates its INT8 model)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=6)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    start_load = os.getloadavg()
    demo = demo_bundle()
    small, package = (args.small, args.small_package) if args.small else small_bundle()
    if not (small / "model.int8.onnx").is_file():
        export_int8(small, package, None)
    frames = synthetic_frames(args.frames)
    compare("demo model", demo, frames, args.repeats)
    compare("small model", small, frames, args.repeats)
    loop_compare(demo, frames, max(3, args.repeats // 2))
    threads_sweep(demo, frames, max(2, args.repeats // 2))
    print(f"\nload average at start {' '.join(f'{v:.2f}' for v in start_load)}, at end "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; int8 cards: "
          f"{json.dumps({b.name: load_bundle(b).card.int8 is not None for b in (demo, small)})}")


if __name__ == "__main__":
    main()
