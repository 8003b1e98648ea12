"""`python -m trainer`: worker (the service the panel trains through), train, evaluate, export, build-engine, publish.

Heavy imports (TensorFlow, tf2onnx, TensorRT) happen inside each command, after cheap checks, so
a bad package or a typo is reported in a second. Known failures print one clear `error:` message
and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trainer.baseline import baseline_of, sample_um_per_pixel
from trainer.bundle import BundleError, ModelCard, read_card, write_card
from trainer.config import TrainConfig
from trainer.dataset import DatasetError, load_dataset_package, split_dataset
from trainer.engines import EngineError
from trainer.errors import ExportError, OutputDirError, PretrainError, WeightsError
from trainer.fleet import cli as fleet_cli
from trainer.objectstore import StoreError
from trainer.publish import PublishError, StoreConfig, publish_bundle
from trainer.rollouts import FleetConfigError, FleetSettings
from trainer.scoring import score_bundle_kept
from trainer.service import TokenError

_TRAIN_FLAGS = ("epochs", "input_size", "width_multiplier", "weights", "seed", "batch_size", "crop",
                "learning_rate", "val_fraction", "max_detections", "time_limit_min", "eval_every", "init_from", "box_loss", "pixels", "folds", "name", "version")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a detector on a dataset package and write a model bundle")
    train.add_argument("package", type=Path, help="dataset package (.zip) exported by the panel")
    train.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    for name in _TRAIN_FLAGS:
        field = TrainConfig.model_fields[name]
        kind = type(field.default) if field.default is not None else str
        train.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None, help=f"{field.description} (default {field.default})")
    train.add_argument("--force", action="store_true", help="replace the bundle already in --out")
    train.add_argument("--quiet", action="store_true", help="no progress bar (progress.json is still written)")
    evaluate = sub.add_parser("evaluate", help="score a bundle's ONNX model on every image of a package")
    evaluate.add_argument("bundle", type=Path)
    evaluate.add_argument("package", type=Path)
    evaluate.add_argument("--record", metavar="KEY", help="also store the result in model.json metrics[KEY], and what the model kept on these frames as its drift baseline (metrics.baseline)")
    evaluate.add_argument("--refit-thresholds", action="store_true",
                          help="re-fit the per-class thresholds on this package instead of using the bundle's "
                          "(not what the device does: the output says so)")
    pre = sub.add_parser("pretrain", help="pre-train the backbone on unlabelled captures (for train --weights)")
    pre.add_argument("source", type=Path, help="folder of captured frames, or a dataset package (labels ignored)")
    pre.add_argument("--out", type=Path, required=True, help="weights file to write (*.weights.h5)")
    pre.add_argument("--steps", type=int, default=0, help="training steps (default: ~10 passes, 300-1500)")
    pre.add_argument("--width-multiplier", type=float, default=0.35, help="must equal train's --width-multiplier")
    pre.add_argument("--scale", type=float, default=1.0, help="resize frames by this first (the detector's scale)")
    pre.add_argument("--seed", type=int, default=0)
    export = sub.add_parser("export", help="re-export model.onnx of a bundle from its training checkpoint")
    export.add_argument("bundle", type=Path)
    export.add_argument("--package", type=Path, help="package whose validation frames check the export (with --int8: "
                        "the training package whose frames calibrate it)")
    export.add_argument("--int8", action="store_true", help="add an INT8 model (ONNX Runtime static QDQ) beside model.onnx, "
                        "for CPU boxes; model.onnx is kept as it is (no TensorFlow needed)")
    export.add_argument("--held-out", type=Path, help="with --int8: package to compare INT8 with float on (default: the "
                        "training package's validation split, when the bundle has its training folder)")
    export.add_argument("--max-map-loss", type=float, default=0.01,
                        help="with --int8: the most held-out mAP@0.5 INT8 may lose and be the device's default (default 0.01)")
    export.add_argument("--calibration-frames", type=int, default=32, help="with --int8: training frames to calibrate on")
    export.add_argument("--graph-only", action="store_true", help="rewrite the bundle's model.onnx as a current export "
                        "would (nearest upsampling as Resize; outputs checked identical), without its training checkpoint")
    engine = sub.add_parser("build-engine", help="build a TensorRT engine for this GPU into the bundle")
    engine.add_argument("bundle", type=Path)
    engine.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp16")
    engine.add_argument("--package", type=Path, help="package whose training frames calibrate int8")
    publish = sub.add_parser("publish", help="upload the bundle to S3-compatible storage")
    publish.add_argument("bundle", type=Path)
    for flag in ("endpoint", "bucket", "access-key", "secret-key"):
        publish.add_argument(f"--{flag}", help=f"S3 {flag} (or SCOPEHIVE_S3_{flag.upper().replace('-', '_')})")
    publish.add_argument("--secure", action=argparse.BooleanOptionalAction, default=None, help="use HTTPS")
    publish.add_argument("--store", help="s3://bucket?endpoint=host:port&secure=0 instead of the flags")
    serve = sub.add_parser("serve", help="serve bundles to devices on Triton (KServe v2), or write a Triton model repository")
    serve.add_argument("bundles", type=Path, nargs="+", help="bundle folders to serve")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 or the LAN address "
                            "to serve devices: see docs/hive.md)")
    serve.add_argument("--http-port", type=int, default=8000, help="KServe v2 HTTP port (devices' hive.endpoints)")
    serve.add_argument("--grpc-port", type=int, default=8001)
    serve.add_argument("--metrics-port", type=int, default=8002, help="Prometheus metrics port")
    serve.add_argument("--repository", type=Path, help="write a model repository for the stock tritonserver here and exit")
    serve.add_argument("--tensorrt", action="store_true", help="with --repository: run the ONNX models through TensorRT (FP16)")
    worker = sub.add_parser("worker", help="the trainer service: take training jobs from devices over HTTP (token, durable queue)")
    worker.add_argument("--store", default=os.environ.get("SCOPEHIVE_STORE", ""),
                        help="object store shared with the devices: file:///folder or s3://bucket?endpoint=host:port&secure=0 "
                        "(default SCOPEHIVE_STORE); the devices' panel.storage must name the same")
    worker.add_argument("--work", type=Path, default=Path("var/trainer"), help="job queue (SQLite) and training folders")
    worker.add_argument("--host", default="0.0.0.0", help="address to listen on")
    worker.add_argument("--port", type=int, default=8700, help="port devices reach (their trainer.url)")
    fleet_cli.register(sub)  # rollout, rollback: trainer/fleet/cli.py
    return parser


def cmd_train(args: argparse.Namespace) -> None:
    started = time.monotonic()  # the time limit covers the whole command, package reading included
    options = {k: getattr(args, k) for k in _TRAIN_FLAGS if getattr(args, k) is not None}
    config = TrainConfig(**options)
    dataset = load_dataset_package(args.package)  # fails fast, before TensorFlow loads
    from trainer.accelerator import load_tensorflow

    load_tensorflow()  # says "training on CPU" once instead of TensorFlow's CUDA errors
    if config.weights not in ("none", "imagenet"):
        from trainer.pretrain import check_weights_file

        check_weights_file(config.weights, config.width_multiplier)  # before --out is touched
    if config.init_from:
        from trainer.warmstart import check

        check(Path(config.init_from), dataset.classes, config.width_multiplier)  # before --out is touched
    from trainer.pipeline import train_dataset

    out = train_dataset(dataset, args.out, config, args.force, args.quiet, started)
    metrics = read_card(out).metrics
    print(f"bundle written to {out}: mAP@0.5 {metrics['map50']:.3f}, mAP@[.5:.95] {metrics['map50_95']:.3f}, "
          f"ONNX vs Keras max abs diff {metrics['onnx_parity']['max_abs_diff']:.2e}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Scores with ONNX Runtime at the bundle's thresholds: what the device will reproduce."""
    card = read_card(args.bundle)
    dataset = load_dataset_package(args.package)
    if dataset.classes != card.classes:
        raise BundleError(f"the package's classes {dataset.classes} differ from the bundle's {card.classes}")
    scored = score_bundle_kept(args.bundle, dataset.samples, args.refit_thresholds)
    result: dict[str, Any] = {k: v for k, v in scored.figures.items() if k != "image_counts"}
    result["dataset_sha256"] = dataset.sha256
    if args.record:
        card.metrics[args.record] = result
        card.metrics["baseline"] = baseline_of(  # the frames the lab evaluated on become what drift is judged against
            scored.kept, card.classes, "evaluate", f"trainer evaluate --record {args.record} on {args.package.name} "
            f"({len(dataset.samples)} frames)", sample_um_per_pixel(dataset.samples))
        write_card(args.bundle, card)
        _append_to_report(args.bundle, args.record, result, args.package.name)
    print(f"thresholds: {result['thresholds_from']}", file=sys.stderr)
    print(json.dumps(result, indent=1))


def _append_to_report(bundle: Path, key: str, result: dict[str, Any], package: str) -> None:
    """Recorded evaluations belong in the human-readable report too."""
    from trainer.report import count_table

    report = bundle / "report.md"
    if report.is_file():
        with report.open("a") as fh:
            fh.write(f"\n## {key}: {package}\n\n{result['val_images']} images, {result['val_objects']} objects: "
                     f"mAP@0.5 **{result['map50']:.3f}**, mAP@[.5:.95] {result['map50_95']:.3f}, "
                     f"count MAE per image {result['count_error']['total_mae']:.2f}; "
                     f"thresholds: {result['thresholds_from']}.{_estimate_note(result)}\n\n" + "\n".join(count_table(result)) + "\n")


def _estimate_note(result: dict[str, Any]) -> str:
    """The bundle's dense-frame corrected counts on this package, where it has count_models."""
    estimate = result.get("count_estimate_error")
    if not estimate:
        return ""
    return (f" Corrected counts (count_models, the device's `count_estimate`): count MAE per image {estimate['total_mae']:.2f}"
            f" (boxes {result['count_error']['total_mae']:.2f}).")


def cmd_pretrain(args: argparse.Namespace) -> None:
    from trainer.accelerator import load_tensorflow
    from trainer.frames import load_frames

    frames = load_frames(args.source)  # a wrong folder fails before TensorFlow loads
    load_tensorflow()
    from trainer.pretrain import PretrainConfig, default_steps, pretrain

    config = PretrainConfig(steps=args.steps or default_steps(len(frames)), width_multiplier=args.width_multiplier,
                            scale=args.scale, seed=args.seed)
    print(f"pre-training on {len(frames)} frames for {config.steps} steps", flush=True)
    result = pretrain(frames, args.out, config)
    print(f"wrote {args.out}: reconstruction loss {result['first_loss']:.4f} -> {result['last_loss']:.4f} "
          f"in {result['seconds']:.0f} s; use it with: train PKG --out DIR --weights {args.out}")


def cmd_export(args: argparse.Namespace) -> None:
    if args.graph_only and args.int8:
        raise ExportError("--graph-only and --int8 are two steps: run export --graph-only first, then export --int8")
    if args.int8:
        return _export_int8(args)
    if args.graph_only:
        return _export_graph_only(args)
    card = read_card(args.bundle)
    from trainer.accelerator import load_tensorflow

    load_tensorflow(announce=False)
    from trainer.export import compare_with_keras, export_onnx
    from trainer.pipeline import parity_frames, rebuild_inference_model

    model, resize, payload = rebuild_inference_model(args.bundle)
    onnx_model = export_onnx(model)
    if args.package:
        dataset = load_dataset_package(args.package)
        _, val = split_dataset(dataset.samples, payload["config"]["val_fraction"], payload["config"]["seed"])
        parity = compare_with_keras(onnx_model, model, parity_frames(val, resize))
        card.metrics["onnx_parity"] = parity
        print(f"ONNX vs Keras on {parity['frames']} frames: max abs diff {parity['max_abs_diff']:.2e}")
    _replace_model_onnx(args.bundle, card, onnx_model)


def _export_graph_only(args: argparse.Namespace) -> None:
    """`export --graph-only`: model.onnx rewritten in place (trainer/graph_rewrite.py), no TensorFlow."""
    import onnx

    from trainer.graph_rewrite import upsampling_as_resize

    card = read_card(args.bundle)
    rewrite = upsampling_as_resize(onnx.load(str(args.bundle / "model.onnx")))
    if not rewrite.replaced:
        print(f"{args.bundle / 'model.onnx'} left as it is: {rewrite.note}")
        return
    print(f"{rewrite.replaced} upsampling chain(s) -> Resize, {rewrite.removed_nodes} nodes fewer; outputs identical on random frames")
    _replace_model_onnx(args.bundle, card, rewrite.model.SerializeToString())


def _replace_model_onnx(bundle: Path, card: ModelCard, onnx_model: bytes) -> None:
    """Write the new model.onnx; engines and the INT8 model made from the old one go with it."""
    tmp = bundle / ".model.onnx.tmp"
    tmp.write_bytes(onnx_model)
    tmp.replace(bundle / "model.onnx")
    card.engines = []  # engines were built from the old ONNX
    if card.int8 is not None:  # so was the INT8 model
        (bundle / card.int8.file).unlink(missing_ok=True)
        card.int8 = None
        card.metrics.pop("int8", None)
        print("the INT8 model was made from the old model.onnx and is removed: run export --int8 again")
    write_card(bundle, card)
    print(f"exported {bundle / 'model.onnx'}")


def _export_int8(args: argparse.Namespace) -> None:
    """`export --int8`: quantise model.onnx as it is, compare on held-out frames, record the verdict."""
    card = read_card(args.bundle)
    if not args.package:
        raise ExportError("--int8 needs --package: the training package whose frames calibrate the INT8 model")
    packages = [(args.package, load_dataset_package(args.package))]
    if args.held_out:
        packages.append((args.held_out, load_dataset_package(args.held_out)))
    for path, dataset in packages:
        if dataset.classes != card.classes:
            raise BundleError(f"{path}: the package's classes {dataset.classes} differ from the bundle's {card.classes}")
    from trainer.predict import first_tiles
    from trainer.quantize import add_int8, frames_for

    held = (args.held_out.name, packages[1][1]) if args.held_out else None
    calibration, held_out = frames_for(args.bundle, packages[0][1], held, args.calibration_frames)
    spec = add_int8(args.bundle, first_tiles(calibration, card.input.resize_rule()), held_out, args.max_map_loss)
    comparison = read_card(args.bundle).metrics.get("int8")
    if comparison:
        f, q = comparison["float"], comparison["int8"]
        print(f"held-out ({comparison['images']} images): mAP@0.5 float {f['map50']:.3f}, INT8 {q['map50']:.3f}; "
              f"count MAE float {f['count_mae']:.2f}, INT8 {q['count_mae']:.2f}; "
              f"INT8 counts vs float MAE {comparison['counts_vs_float']['mae']:.2f}")
    print(f"wrote {args.bundle / spec.file} ({spec.calibration_frames} calibration frames): {spec.reason}")
    if not spec.default:
        print(f"warning: INT8 is not the default: {spec.reason}", file=sys.stderr)


def cmd_build_engine(args: argparse.Namespace) -> None:
    card = read_card(args.bundle)
    frames = None
    if args.package:
        from trainer.predict import first_tiles

        dataset = load_dataset_package(args.package)
        frames = first_tiles(dataset.samples[:64], card.input.resize_rule())
    from trainer.engines import add_engine

    spec = add_engine(args.bundle, args.precision, frames)
    print(f"built {args.bundle / spec.file} (TensorRT {spec.tensorrt_version}, sm {spec.compute_capability})")


def cmd_publish(args: argparse.Namespace) -> None:
    if args.store:
        config = StoreConfig.from_url(args.store)
    else:
        config = StoreConfig.from_env(endpoint=args.endpoint, bucket=args.bucket, access_key=args.access_key,
                                      secret_key=args.secret_key, secure=args.secure)
    print(f"published to {publish_bundle(args.bundle, config)}")


def cmd_serve(args: argparse.Namespace) -> None:
    for bundle in args.bundles:
        read_card(bundle)  # a bad bundle fails in a second, before any server starts
    if args.repository:
        from trainer.hive.repository import write_repository

        names = write_repository(args.bundles, args.repository, args.tensorrt)
        print(f"model repository {args.repository}: {', '.join(names)}")
        return
    import logging

    from trainer.hive.serve import Ports, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(args.bundles, Ports(args.http_port, args.grpc_port, args.metrics_port, args.host))


def cmd_worker(args: argparse.Namespace) -> None:
    import logging

    from trainer.objectstore import open_store
    from trainer.service import Tokens, serve

    if not args.store:
        raise StoreError("give --store (or SCOPEHIVE_STORE): the object store the devices export their packages to, "
                         "e.g. --store file:///srv/scopehive/store")
    tokens = Tokens.from_env()  # before anything listens: no token, no service
    fleet = FleetSettings.from_env(worker_store=args.store)  # SCOPEHIVE_TRAINER_FLEET: "Roll out" from the panel
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(args.host, args.port, args.work, open_store(args.store), tokens, fleet=fleet)


_COMMANDS = {"train": cmd_train, "worker": cmd_worker, "evaluate": cmd_evaluate, "pretrain": cmd_pretrain, "export": cmd_export,
             "build-engine": cmd_build_engine, "publish": cmd_publish, "serve": cmd_serve}
_KNOWN_ERRORS = (DatasetError, BundleError, EngineError, PublishError, ValidationError, ExportError, OutputDirError,
                 PretrainError, WeightsError, StoreError, TokenError, FleetConfigError)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in fleet_cli.COMMANDS:
        return fleet_cli.run(args)
    try:
        _COMMANDS[args.command](args)
    except _KNOWN_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in TRAINER_PACKAGES:
            raise
        print(missing_trainer_packages(exc), file=sys.stderr)
        return 2
    return 0


# What `pip install -e ".[trainer]"` adds to a device-only environment (`make demo` installs no TensorFlow).
TRAINER_PACKAGES = frozenset({"tensorflow", "keras", "tf2onnx", "onnx", "matplotlib", "tqdm", "balena", "grafana_client"})


def missing_trainer_packages(exc: ModuleNotFoundError) -> str:
    return (
        f"error: the trainer's packages are not installed here ({exc}): `make demo` sets up the device only. "
        "Run `make setup` (TensorFlow and the rest, about 3 GB) or `.venv/bin/pip install -e \".[trainer]\"`, then retry."
    )
