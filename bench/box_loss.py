"""Benchmark: box regression L1 vs L1 + GIoU (`--box-loss`, issue 26 item 2), every synthetic modality.

For each synthetic mode (device/sources/synthetic_modes.py MODES): one package and one held-out
set (new seeds), the same seeds and epochs for both losses, trained by the trainer's own path
(train_bundle with TrainConfig(epochs=N, box_loss=...)) and scored through the device's Detector
(bench/train_magnifications.py `_device_score`): mAP@0.5, mAP@[.5:.95] and count MAE per image.
Short trainings on small frames so the run fits ~20 minutes on 2 CPU cores: read the differences
between the two rows of a mode, not the absolute figures. Prints, does not assert.

    flock /tmp/scopehive-cpu.lock .venv/bin/python bench/box_loss.py [--frames 48] [--held-out 16] \
        [--size 256] [--epochs 30] [--modes brightfield,blood,fluorescence,phase] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from train_magnifications import Plan, _device_score, _images, _package, _samples

LOSSES = ("l1", "l1+giou")


def _train(package: Path, out: Path, epochs: int, loss: str, seed: int) -> float:
    from trainer.config import TrainConfig
    from trainer.pipeline import train_bundle

    started = time.monotonic()
    train_bundle(package, out, TrainConfig(epochs=epochs, box_loss=loss, seed=seed, time_limit_min=0), force=True, quiet=True)
    return time.monotonic() - started


def run_mode(mode: str, plan: Plan, seed: int) -> list[str]:
    import train_magnifications as tm

    tm.MODE = mode  # the helpers read the module's mode
    train = _package(plan.work / f"{mode}-train.zip", _images(plan, plan.frames, seed, {}))
    held = _samples(_package(plan.work / f"{mode}-held.zip", _images(plan, plan.held_out, seed + 100, {})))
    rows = []
    for loss in LOSSES:
        bundle = plan.work / f"{mode}-{loss}"
        seconds = _train(train, bundle, plan.epochs, loss, seed)
        r = _device_score(bundle, held, told=True)
        rows.append(f"| {mode} | {loss} | {r['map50']:.3f} | {r['map50_95']:.3f} | {r['mae']:.2f} | {seconds:.0f} |")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--held-out", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--modes", default="brightfield,blood,fluorescence,phase")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scopehive-bench-boxloss-"))
    plan = Plan(args.frames, args.held_out, args.size, args.epochs, False, work)
    print(f"plan: {args.frames} training and {args.held_out} held-out frames of {args.size}x{args.size} per mode, "
          f"{args.epochs} epochs per training, seed {args.seed}; cpu cores {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
    print("| mode | box loss | mAP@0.5 | mAP@[.5:.95] | count MAE | train s |\n| --- | --- | --- | --- | --- | --- |")
    started = time.monotonic()
    for mode in args.modes.split(","):
        run_mode(mode, plan, args.seed)
    print(f"total {(time.monotonic() - started) / 60:.1f} min; load {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
