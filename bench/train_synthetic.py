"""Benchmark: default CPU training on a 300-frame synthetic dataset (640x480).

Target (issue 3): under 15 minutes on 2 CPU cores, mAP@0.5 >= 0.9 on the validation split, and
a small ONNX-vs-Keras difference. Prints the figures; does not assert them.

    .venv/bin/python bench/train_synthetic.py [--frames 300] [--epochs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=None, help="default: the trainer's default")
    parser.add_argument("--out", type=Path, default=None, help="keep the bundle here (default: a temp dir)")
    args = parser.parse_args()

    from device.datasets.package import write_synthetic_package
    from trainer.bundle import read_card
    from trainer.config import TrainConfig
    from trainer.pipeline import train_bundle

    work = Path(tempfile.mkdtemp(prefix="scopehive-bench-"))
    package = work / "synthetic.zip"
    started = time.monotonic()
    write_synthetic_package(package, count=args.frames, seed=1, width=640, height=480)
    print(f"dataset: {args.frames} synthetic frames 640x480 written in {time.monotonic() - started:.1f} s")
    config = TrainConfig(**({"epochs": args.epochs} if args.epochs else {}))
    out = args.out or work / "bundle"
    started = time.monotonic()
    train_bundle(package, out, config, force=True)
    seconds = time.monotonic() - started
    card = read_card(out)
    metrics = card.metrics
    training = metrics["training"]
    print(f"cpu cores visible: {os.cpu_count()}, epochs: {training['epochs_run']} (best {training['best_epoch']}), "
          f"input: {card.input.width}x{card.input.height}")
    print(f"training + evaluation + export: {seconds / 60:.1f} min ({seconds:.0f} s)")
    print(f"validation mAP@0.5: {metrics['map50']:.3f}   mAP@[.5:.95]: {metrics['map50_95']:.3f}")
    print(f"precision {metrics['precision']:.3f} recall {metrics['recall']:.3f} at threshold {metrics['score_threshold']:.3f}")
    print(f"count MAE per image: {metrics['count_error']['total_mae']:.2f}")
    print(f"ONNX vs Keras max abs diff: {metrics['onnx_parity']['max_abs_diff']:.2e}")
    print(f"bundle: {out}")


if __name__ == "__main__":
    main()
