"""Benchmark: the default CPU training on a nuclei-sized synthetic package of mixed frame sizes.

Like a dataset imported from several microscopes: ~530 frames of 7 sizes from 256x256 to
1388x1040 (the shares of a public nuclei set), dense small objects (hundreds in the big frames).
Target (issue 16): the default run within 15 minutes on 2 CPU cores, no frame stretched, every
frame size found. Prints the plan, time, validation mAP overall and per frame size; does not
assert them.

    .venv/bin/python bench/train_mixed_sizes.py [--frames 530] [--epochs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# (width, height): share of frames, as in a public nuclei set (stage 1 of DSB 2018)
SIZES = {(256, 256): 0.50, (320, 256): 0.17, (696, 520): 0.14, (360, 360): 0.14, (1024, 1024): 0.025,
         (640, 512): 0.02, (1388, 1040): 0.005}
SCENE = {"density": 250.0, "class_mix": (1.0, 0.0, 0.0), "cluster_fraction": 0.5}


def _images(frames: int) -> Iterator[object]:
    from device.datasets.package import synthetic_images

    for seed, ((w, h), share) in enumerate(SIZES.items(), start=1):
        yield from synthetic_images(max(1, round(frames * share)), seed, w, h, **SCENE)  # type: ignore[arg-type]


def _per_size(bundle: Path, package: Path) -> dict[str, float]:
    """Validation mAP@0.5 of the exported model by frame size (ONNX, the device's tiling)."""
    from trainer.bundle import read_card
    from trainer.config import TrainConfig
    from trainer.dataset import load_dataset_package, split_dataset
    from trainer.export import onnx_runner
    from trainer.metrics import coco_map
    from trainer.predict import frame_max_detections, predict, truth_of

    card = read_card(bundle)
    config = TrainConfig()
    dataset = load_dataset_package(package)
    _, val = split_dataset(dataset.samples, config.val_fraction, config.seed)
    runner = onnx_runner((bundle / "model.onnx").read_bytes())
    out: dict[str, float] = {}
    for hw in sorted({s.image.shape[:2] for s in val}):
        group = [s for s in val if s.image.shape[:2] == hw]
        preds = predict(runner, group, card.input.resize_rule())
        max_dets = frame_max_detections(card.input.resize_rule(), card.output.max_detections)
        out[f"{hw[1]}x{hw[0]} ({len(group)})"] = float(coco_map(truth_of(group), preds, card.classes, max_dets)["map50"])  # type: ignore[arg-type]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=530)
    parser.add_argument("--epochs", type=int, default=None, help="default: the trainer's default")
    parser.add_argument("--out", type=Path, default=None, help="keep the bundle here (default: a temp dir)")
    args = parser.parse_args()

    from device.datasets.package import write_dataset_package
    from device.sources.synthetic import CLASSES
    from trainer.bundle import read_card
    from trainer.config import TrainConfig
    from trainer.pipeline import train_bundle

    work = Path(tempfile.mkdtemp(prefix="scopehive-bench-mixed-"))
    package = work / "mixed.zip"
    started = time.monotonic()
    manifest = write_dataset_package(package, "mixed-sizes", CLASSES, _images(args.frames))  # type: ignore[arg-type]
    print(f"dataset: {manifest.image_count} synthetic frames of {len(SIZES)} sizes written in {time.monotonic() - started:.1f} s")
    out = args.out or work / "bundle"
    started = time.monotonic()
    train_bundle(package, out, TrainConfig(**({"epochs": args.epochs} if args.epochs else {})), force=True)
    seconds = time.monotonic() - started
    card = read_card(out)
    metrics, training = card.metrics, card.metrics["training"]
    print(f"cpu cores visible: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    print(f"epochs: {training['epochs_run']} of {training['plan']['epochs']} planned (best {training['best_epoch']}); "
          f"input {card.input.width}x{card.input.height}, scale {card.input.scale:.3f}, max_tiles {card.input.max_tiles}, "
          f"max_detections {card.output.max_detections}")
    for note in training["notes"]:
        print(f"note: {note}")
    print(f"training + evaluation + export: {seconds / 60:.1f} min ({seconds:.0f} s)")
    print(f"validation mAP@0.5: {metrics['map50']:.3f}   mAP@[.5:.95]: {metrics['map50_95']:.3f}")
    print(f"count MAE per image: {metrics['count_error']['total_mae']:.2f}")
    for size, value in _per_size(out, package).items():
        print(f"  frames {size}: mAP@0.5 {value:.3f}")
    print(f"bundle: {out}")


if __name__ == "__main__":
    main()
