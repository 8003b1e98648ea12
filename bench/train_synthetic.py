"""Benchmark: the default training recipe on each synthetic modality (640x480 frames).

For every mode it writes a training package (seed 1) and a held-out package (seed 2), trains with
the default command's settings, and scores the bundle's ONNX model on the held-out frames at the
bundle's own per-class thresholds (what the device does). Prints, per modality: mAP@0.5,
mAP@[.5:.95], share of images counted exactly per class, count MAE per image, training minutes,
and the machine's load average (training is CPU bound; a shared machine runs slower).

Target (issue 3, brightfield): under 15 minutes on 2 CPU cores, mAP@0.5 >= 0.9. Prints, does not assert.

    .venv/bin/python bench/train_synthetic.py [--modes brightfield,blood,fluorescence,phase]
        [--frames 300] [--held-out 60] [--epochs N] [--out DIR] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def run_mode(mode: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Train and score one modality; returns the figures the table shows."""
    from device.datasets.package import write_synthetic_package
    from trainer.bundle import read_card
    from trainer.config import TrainConfig
    from trainer.dataset import load_dataset_package
    from trainer.pipeline import train_bundle
    from trainer.scoring import score_bundle

    train_zip, held_zip = work / f"{mode}-train.zip", work / f"{mode}-held.zip"
    write_synthetic_package(train_zip, count=args.frames, seed=1, width=640, height=480, mode=mode)
    write_synthetic_package(held_zip, count=args.held_out, seed=2, width=640, height=480, mode=mode)
    config = TrainConfig(**({"epochs": args.epochs} if args.epochs else {}))
    out = (args.out or work) / f"bundle-{mode}"
    load_before, started = os.getloadavg()[0], time.monotonic()
    train_bundle(train_zip, out, config, force=True, quiet=True)
    minutes = (time.monotonic() - started) / 60
    card = read_card(out)
    held = load_dataset_package(held_zip)
    scores = score_bundle(out, held.samples)  # the card's tiling and thresholds, as the device runs it
    counts = scores["count_error"]
    assert isinstance(counts, dict)
    return {
        "mode": mode, "map50": scores["map50"], "map50_95": scores["map50_95"],
        "exact": {c: v["exact_share"] for c, v in counts["per_class"].items()},
        "count_mae": counts["total_mae"], "objects_per_image": scores["val_objects"] / max(1, len(held.samples)),  # type: ignore[operator]
        "minutes": minutes, "epochs": card.metrics["training"]["epochs_run"],
        "input": f"{card.input.width}x{card.input.height} {card.input.resize}", "max_detections": card.output.max_detections,
        "load": (load_before + os.getloadavg()[0]) / 2, "val_map50": card.metrics["map50"],
    }


def row(r: dict[str, Any]) -> str:
    exact = ", ".join(f"{c} {100 * v:.0f} %" for c, v in r["exact"].items() if v is not None)
    return (f"| {r['mode']} | {r['map50']:.3f} | {r['map50_95']:.3f} | {exact} | {r['count_mae']:.2f} "
            f"(of {r['objects_per_image']:.0f}) | {r['minutes']:.1f} | {r['input']}, {r['epochs']} epochs, load {r['load']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="brightfield,blood,fluorescence,phase")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--held-out", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=None, help="default: the trainer's default")
    parser.add_argument("--out", type=Path, default=None, help="keep the bundles here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="append each mode's figures here as it finishes")
    args = parser.parse_args()

    from trainer.accelerator import load_tensorflow

    print(load_tensorflow(announce=False), f"on {os.cpu_count()} visible cores", flush=True)
    work = Path(tempfile.mkdtemp(prefix="scopehive-bench-"))
    results = []
    for mode in args.modes.split(","):
        result = run_mode(mode.strip(), args, work)
        results.append(result)
        print(json.dumps(result), flush=True)
        if args.json:
            with args.json.open("a") as fh:
                fh.write(json.dumps(result) + "\n")
    print("\n| modality | mAP@0.5 | mAP@[.5:.95] | counted exactly (held-out images) | count MAE per image | training min | run |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for result in results:
        print(row(result))


if __name__ == "__main__":
    main()
