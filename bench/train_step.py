"""Benchmark: what one training step costs on this machine (the pace the time limit measures).

Prints, per synthetic modality at its automatic scale: milliseconds to prepare one batch of
augmented crops (numpy, on the CPU) and for one optimiser step (TensorFlow), median of `--steps`
after two warm-up steps. At the default 3600 steps, step + preparation decides whether a run
fits in `--time-limit-min`.

    .venv/bin/python bench/train_step.py [--modes blood,brightfield] [--steps 30]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def measure(mode: str, steps: int, work: Path) -> str:
    from device.datasets.package import write_synthetic_package
    from trainer.config import TrainConfig
    from trainer.dataset import load_dataset_package, split_dataset
    from trainer.model import ModelSpec, build_raw_model
    from trainer.plan import make_plan
    from trainer.schedule import ShrinkableCosine
    from trainer.train import _batches, _make_step, _optimizer

    package = work / f"{mode}.zip"
    write_synthetic_package(package, count=40, seed=1, mode=mode)
    dataset = load_dataset_package(package)
    config = TrainConfig()
    train, val = split_dataset(dataset.samples, config.val_fraction, config.seed)
    scale = make_plan(train, val, dataset.classes, config).policy.scale
    batches = _batches(train, [scale] * len(train), config, len(dataset.classes))
    prep = []
    for _ in range(steps + 2):
        started = time.perf_counter()
        prep.append((next(batches), time.perf_counter() - started))
    raw = build_raw_model(ModelSpec(len(dataset.classes), config.width_multiplier, weights=None))
    step = _make_step(raw, _optimizer(ShrinkableCosine(config.learning_rate, 1000)))
    timings = []
    for batch, _ in prep:
        started = time.perf_counter()
        step(*batch)
        timings.append(time.perf_counter() - started)
    prep_ms = 1000 * float(np.median([t for _, t in prep[2:]]))
    step_ms = 1000 * float(np.median(timings[2:]))
    return (f"{mode}: scale {scale:.3f}, batch {config.batch_size} x {config.crop} px; prepare {prep_ms:.0f} ms, "
            f"step {step_ms:.0f} ms; 3600 steps ~{3600 * (prep_ms + step_ms) / 60000:.1f} min if not overlapped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="blood,brightfield")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()

    from trainer.accelerator import load_tensorflow

    print(load_tensorflow(announce=False), f"on {os.cpu_count()} visible cores, load {os.getloadavg()[0]:.1f}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="scopehive-step-"))
    for mode in args.modes.split(","):
        print(measure(mode.strip(), args.steps, work), flush=True)


if __name__ == "__main__":
    main()
