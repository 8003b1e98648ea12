"""Benchmark: INT8 accuracy on every synthetic modality (issue 27): float vs INT8 held-out mAP.

For each mode of device/sources/synthetic_modes.py it writes a training package (seed 1) and a
held-out package (seed 2), trains with the trainer's normal path (train_bundle, default recipe,
`TrainConfig(time_limit_min=M)`: a short budget, so the absolute figures are of a short training),
then runs `trainer export --int8 --package TRAIN --held-out HELD` (calibration on training frames,
both models scored on the held-out frames at the bundle's own thresholds) and prints float vs INT8
mAP@0.5 and mAP@[.5:.95], the differences, and whether the 0.01 rule kept INT8 as the default.

    flock /tmp/scopehive-cpu.lock .venv/bin/python bench/int8_modalities.py \
        [--modes brightfield,blood,fluorescence,phase] [--frames 40] [--held-out 24] [--minutes 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from device_common import ROOT  # noqa: F401  (puts the repository on sys.path)
from speed_int8 import export_int8

from device.sources.synthetic_modes import MODES

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def train_mode(mode: str, args: argparse.Namespace, work: Path) -> tuple[Path, Path, Path, float]:
    """(bundle, training package, held-out package, training seconds) of one modality."""
    from device.datasets.package import write_synthetic_package
    from trainer.config import TrainConfig
    from trainer.pipeline import train_bundle

    train_zip, held_zip = work / f"{mode}-train.zip", work / f"{mode}-held.zip"
    write_synthetic_package(train_zip, count=args.frames, seed=1, width=args.width, height=args.height, mode=mode)
    write_synthetic_package(held_zip, count=args.held_out, seed=2, width=args.width, height=args.height, mode=mode)
    started = time.monotonic()
    bundle = train_bundle(train_zip, work / f"bundle-{mode}", TrainConfig(time_limit_min=args.minutes), force=True, quiet=True)
    return bundle, train_zip, held_zip, time.monotonic() - started


def run_mode(mode: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Train one modality, add its INT8 model, and return what the table shows."""
    from trainer.bundle import read_card

    bundle, train_zip, held_zip, seconds = train_mode(mode, args, work)
    export_int8(bundle, train_zip, held_zip)
    card = read_card(bundle)
    comparison, training = card.metrics["int8"], card.metrics["training"]
    assert card.int8 is not None
    return {"mode": mode, "float": comparison["float"], "int8": comparison["int8"], "images": comparison["images"],
            "counts_vs_float": comparison["counts_vs_float"]["mae"], "default": card.int8.default,
            "seconds": seconds, "epochs": training["epochs_run"], "input": f"{card.input.width}x{card.input.height}"}


HEADER = ("| modality | mAP@0.5 float | INT8 | diff | mAP@[.5:.95] float | INT8 | diff | count MAE float / INT8 "
          "| INT8 vs float counts (MAE) | INT8 default (0.01 rule) | training |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def row(r: dict[str, Any]) -> str:
    f, q = r["float"], r["int8"]
    return (f"| {r['mode']} | {f['map50']:.3f} | {q['map50']:.3f} | {q['map50'] - f['map50']:+.3f} "
            f"| {f['map50_95']:.3f} | {q['map50_95']:.3f} | {q['map50_95'] - f['map50_95']:+.3f} "
            f"| {f['count_mae']:.2f} / {q['count_mae']:.2f} | {r['counts_vs_float']:.2f} | {'yes' if r['default'] else 'no'} "
            f"| {r['seconds'] / 60:.1f} min, {r['epochs']} epochs, input {r['input']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--frames", type=int, default=40, help="training frames per modality")
    parser.add_argument("--held-out", type=int, default=24, help="held-out frames per modality")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--minutes", type=float, default=3.0, help="TrainConfig.time_limit_min per modality")
    parser.add_argument("--out", type=Path, default=None, help="keep packages and bundles here (default: a temp dir)")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="scopehive-bench-int8-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"plan: {args.frames} training + {args.held_out} held-out frames of {args.width}x{args.height} per modality, "
          f"training budget {args.minutes:g} min each (TrainConfig(time_limit_min={args.minutes:g}), otherwise the defaults); "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; work dir {work}", flush=True)
    started, results = time.monotonic(), []
    for mode in args.modes.split(","):
        results.append(run_mode(mode.strip(), args, work))
        print(row(results[-1]), flush=True)
    print(f"\n{HEADER}")
    for result in results:
        print(row(result))
    print(f"\ntotal {(time.monotonic() - started) / 60:.1f} min; load average now "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} (1, 5, 15 min)")


if __name__ == "__main__":
    main()
