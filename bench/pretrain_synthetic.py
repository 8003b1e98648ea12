"""Benchmark: does pre-training on unlabelled captures help when only a few frames are labelled?

A lab has thousands of unlabelled frames and a few dozen annotated ones. This writes, for one
synthetic modality, `--unlabelled` frames (seed 5, labels discarded), `--labelled` training
frames (seed 1) and `--held-out` frames (seed 2); pre-trains the backbone on the unlabelled ones
(`python -m trainer pretrain`), then trains the same recipe twice with the same seed and step
budget, from random weights and from the pre-trained file, and scores both on the held-out
frames at each bundle's own thresholds. Prints both rows; does not assert which wins.

    .venv/bin/python bench/pretrain_synthetic.py [--mode blood] [--unlabelled 400] [--labelled 24]
        [--pretrain-steps 1200] [--train-steps 1200] [--seeds 0,1]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def score(bundle: Path, held_zip: Path) -> dict[str, Any]:
    from trainer.dataset import load_dataset_package
    from trainer.scoring import score_bundle

    result = score_bundle(bundle, load_dataset_package(held_zip).samples)  # as the device runs it
    counts = result["count_error"]
    assert isinstance(counts, dict)
    return {"map50": result["map50"], "map50_95": result["map50_95"], "count_mae": counts["total_mae"],
            "exact": {c: v["exact_share"] for c, v in counts["per_class"].items()}}


def train(package: Path, out: Path, steps: int, weights: str, seed: int) -> float:
    from trainer.config import TrainConfig
    from trainer.dataset import load_dataset_package, split_dataset
    from trainer.pipeline import train_dataset
    from trainer.plan import make_plan

    dataset = load_dataset_package(package)
    probe = TrainConfig(seed=seed)
    plan = make_plan(*split_dataset(dataset.samples, probe.val_fraction, probe.seed), dataset.classes, probe)
    epochs = max(3, round(steps / plan.steps_per_epoch))  # the trainer's own epoch size
    started = time.monotonic()
    train_dataset(dataset, out, TrainConfig(epochs=epochs, weights=weights, seed=seed), force=True, quiet=True)
    return (time.monotonic() - started) / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="blood")
    parser.add_argument("--unlabelled", type=int, default=400)
    parser.add_argument("--labelled", type=int, default=24)
    parser.add_argument("--held-out", type=int, default=60)
    parser.add_argument("--pretrain-steps", type=int, default=1200)
    parser.add_argument("--train-steps", type=int, default=1200)
    parser.add_argument("--seeds", default="0", help="training seeds (split and initialisation), e.g. 0,1: one pair of runs each")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from device.datasets.package import write_synthetic_package
    from trainer.accelerator import load_tensorflow

    print(load_tensorflow(announce=False), f"on {os.cpu_count()} visible cores, load {os.getloadavg()[0]:.1f}", flush=True)
    work = args.out or Path(tempfile.mkdtemp(prefix="scopehive-pretrain-"))
    work.mkdir(parents=True, exist_ok=True)
    zips = {name: work / f"{name}.zip" for name in ("unlabelled", "labelled", "held")}
    write_synthetic_package(zips["unlabelled"], args.unlabelled, seed=5, mode=args.mode)
    write_synthetic_package(zips["labelled"], args.labelled, seed=1, mode=args.mode)
    write_synthetic_package(zips["held"], args.held_out, seed=2, mode=args.mode)

    from trainer.config import auto_scale
    from trainer.dataset import load_dataset_package
    from trainer.frames import load_frames
    from trainer.plan import BoxStats
    from trainer.pretrain import PretrainConfig, pretrain

    weights = work / "backbone.weights.h5"
    scale = auto_scale(BoxStats.of(load_dataset_package(zips["labelled"]).samples).sqrt_area)  # the scale `train` will see
    config = PretrainConfig(steps=args.pretrain_steps, scale=scale)
    pre = pretrain(load_frames(zips["unlabelled"]), weights, config, log_every=200)
    pre["scale"] = scale
    print(f"pre-training: {json.dumps(pre)}", flush=True)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for label, source in (("from random weights", "none"), ("from pre-trained backbone", str(weights))):
            bundle = work / f"bundle-{seed}-{source != 'none'}"
            minutes = train(zips["labelled"], bundle, args.train_steps, source, seed)
            rows.append({"start": f"{label}, seed {seed}", "minutes": minutes, **score(bundle, zips["held"])})
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{args.mode}: {args.labelled} labelled frames, {args.unlabelled} unlabelled, held-out {args.held_out}, "
          f"load {os.getloadavg()[0]:.1f}")
    print("| start | mAP@0.5 | mAP@[.5:.95] | count MAE | counted exactly | fine-tune min |\n| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        exact = ", ".join(f"{c} {100 * v:.0f} %" for c, v in r["exact"].items() if v is not None)
        print(f"| {r['start']} | {r['map50']:.3f} | {r['map50_95']:.3f} | {r['count_mae']:.2f} | {exact} | {r['minutes']:.1f} |")
    print(f"pre-training: {pre['steps']} steps in {pre['seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
