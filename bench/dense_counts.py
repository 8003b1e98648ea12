"""Benchmark: counts on dense frames, box counts vs the trainer's count correction (issue 26 item 3).

Per mode, one package whose frames range from sparse to crowded (the density cycles through
`--levels` times the mode's default, so validation sees the range a lab's frames have) and a
held-out set drawn the same way with new seeds; one training by the trainer's own path
(train_bundle, fixed epochs), then the held-out frames scored by `score_bundle` (ONNX Runtime, the
bundle's thresholds and count_models: what the device writes as `count` and `count_estimate`).
Prints, does not assert: what was adopted on validation and how each count fares on frames it
never saw (MAE, share within 10 %, median relative error).

    flock /tmp/scopehive-cpu.lock .venv/bin/python bench/dense_counts.py [--frames 64] [--held-out 24] \
        [--size 256] [--epochs 30] [--modes fluorescence,phase] [--levels 0.5,1,2,3] [--seed 1]
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# The scene field that sets crowding, per mode, and its default (device/sources/synthetic_*.py).
CROWDING = {"fluorescence": ("density", 900.0), "phase": ("cells", 24.0), "brightfield": ("density", 30.0)}


def _images(mode: str, count: int, seed: int, size: int, levels: list[float]) -> Iterable[Any]:
    from device.datasets.package import synthetic_images

    name, default = CROWDING[mode]
    for i, level in zip(range(count), itertools.cycle(levels)):
        yield from synthetic_images(1, seed * 1000 + i, size, size, mode, **{name: default * level})


def _package(path: Path, mode: str, images: Iterable[Any]) -> Path:
    from device.datasets.package import write_dataset_package
    from device.sources.synthetic_modes import mode_classes

    write_dataset_package(path, f"dense-{mode}", mode_classes(mode), images)
    return path


def _row(mode: str, which: str, c: dict[str, Any]) -> str:
    median = c.get("total_relative_error_median")
    within = c.get("total_within_10pct_share")
    return (f"| {mode} | {which} | {c['total_mae']:.2f} | {'n/a' if within is None else f'{100 * within:.0f} %'} | "
            f"{'n/a' if median is None else f'{100 * median:.1f} %'} |")


def run_mode(mode: str, args: argparse.Namespace, work: Path, levels: list[float]) -> None:
    from trainer.bundle import read_card
    from trainer.config import TrainConfig
    from trainer.dataset import load_dataset_package
    from trainer.pipeline import train_bundle
    from trainer.scoring import score_bundle

    train = _package(work / f"{mode}-train.zip", mode, _images(mode, args.frames, args.seed, args.size, levels))
    held = load_dataset_package(_package(work / f"{mode}-held.zip", mode,
                                         _images(mode, args.held_out, args.seed + 100, args.size, levels))).samples
    bundle, started = work / f"{mode}-bundle", time.monotonic()
    train_bundle(train, bundle, TrainConfig(epochs=args.epochs, seed=args.seed, time_limit_min=0), force=True, quiet=True)
    seconds = time.monotonic() - started
    card = read_card(bundle)
    for cls, fit in (card.metrics.get("count_model_fit") or {}).items():
        print(f"  {mode}/{cls} on validation: {'adopted' if fit.get('adopted') else 'not adopted'}: {fit.get('reason')}", flush=True)
    figures = score_bundle(bundle, held)
    print(_row(mode, "boxes (`count`)", figures["count_error"]), flush=True)
    if figures.get("count_estimate_error"):
        print(_row(mode, "corrected (`count_estimate`)", figures["count_estimate_error"]), flush=True)
    truth = sum(len(s.boxes) for s in held) / len(held)
    print(f"  {mode}: held-out mAP@0.5 {figures['map50']:.3f}, {truth:.1f} objects per frame, trained in {seconds:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--held-out", type=int, default=24)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--modes", default="fluorescence,phase")
    parser.add_argument("--levels", default="0.5,1,2,3")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    levels = [float(v) for v in args.levels.split(",")]
    work = Path(tempfile.mkdtemp(prefix="scopehive-bench-dense-"))
    print(f"plan: {args.frames} training and {args.held_out} held-out frames of {args.size}x{args.size} per mode, crowding "
          f"x{args.levels} of each mode's default, {args.epochs} epochs, seed {args.seed}; cpu cores {os.cpu_count()}")
    print("| mode | count | MAE per frame | within 10 % | median relative error |\n| --- | --- | --- | --- | --- |")
    started = time.monotonic()
    for mode in args.modes.split(","):
        run_mode(mode, args, work, levels)
    print(f"total {(time.monotonic() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
