"""Command line of the device: flags map onto DeviceConfig fields (CLI > env > file > defaults)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from device import jsonsafe
from device.config import ConfigError, DeviceConfig, load_config
from device.inference.backend import backend_keys
from device.redact import redact, redact_logging
from device.sources.synthetic_modes import MODES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m device", description="ScopeHive device runtime")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="capture, detect, measure, publish; serve stream, stats and panel")
    run.add_argument("--config", help="YAML config file")
    run.add_argument("--source", help="frame source URI (synthetic://, /dev/video0, file, rtsp://, folder, gst://)")
    run.add_argument("--model", help="model bundle folder or .zip")
    run.add_argument("--backend", choices=backend_keys(), help="inference backend (the registry's keys)")
    run.add_argument("--influx-url", dest="influx.url", help="InfluxDB URL (empty: local store only)")
    run.add_argument("--influx-bucket", dest="influx.bucket", help="InfluxDB bucket/database")
    run.add_argument("--data-dir", help="persistent folder for outbox, engines, bundles")
    run.add_argument("--device-name", help="device tag of every metric")
    run.add_argument("--project", help="project tag of every metric")
    run.add_argument("--port", type=int, help="web port (0: no web server)")
    run.add_argument("--max-frames", type=int, help="stop after N frames, flushing the outbox")
    run.add_argument("--validate-config", action="store_true", help="check config, source URI and model, print, exit")
    from device.experiments.cli import add_parser as add_experiment_parser

    add_experiment_parser(sub)
    pkg = sub.add_parser("synthetic-package", help="write a dataset package of synthetic frames")
    pkg.add_argument("out", help="output .zip")
    pkg.add_argument("--count", type=int, required=True)
    pkg.add_argument("--seed", type=int, default=0)
    pkg.add_argument("--width", type=int, default=640)
    pkg.add_argument("--height", type=int, default=480)
    pkg.add_argument("--mode", default="brightfield", choices=MODES, help="kind of sample (default brightfield)")
    return parser


CLI_FIELDS = ("source", "model", "backend", "influx.url", "influx.bucket", "data_dir", "device_name", "project", "port", "max_frames")


def _check_local_source(uri: str) -> None:
    """A file or folder source must exist now (a camera or stream may come later): a video file is
    opened and closed, an image folder or the folder of a glob must be there."""
    from device.sources.base import SourceError
    from device.sources.images import ImageFolderSource
    from device.sources.registry import open_source
    from device.sources.video import VideoSource

    source = open_source(uri)
    if isinstance(source, VideoSource) and not source.live:
        source.open()
        source.close()
    elif isinstance(source, ImageFolderSource):
        pattern = Path(source.name)
        folder = next((p for p in (pattern, *pattern.parents) if not any(c in p.name for c in "*?[")), pattern)
        if not folder.is_dir():
            raise SourceError(f"{source.name}: the folder {folder} does not exist", permanent=True)


def _printable(config: DeviceConfig) -> dict[str, object]:
    """The config as JSON, without secrets (it may be pasted into a ticket)."""
    data = config.model_dump(mode="json")
    data["source"] = redact(data["source"])
    if data["influx"].get("token"):
        data["influx"]["token"] = "***"
    return data


def _validate(config: DeviceConfig) -> int:
    """Check what can be checked without running: the source URI parses (and a file or folder is
    there), the bundle loads and warms."""
    from device.inference.detector import load_detector
    from device.sources.base import SourceError

    try:
        _check_local_source(config.source)
        if config.model:
            load_detector(Path(config.model), config.backend, config.data_dir, config.score_threshold)
    except (SourceError, ValueError) as exc:
        print(f"configuration is not usable: {redact(str(exc))}", file=sys.stderr)
        return 2
    print(jsonsafe.dumps(_printable(config), indent=2))  # standard JSON, whatever a setting holds
    print("configuration OK", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    from device.models.bundle import BundleError

    overrides = {name: getattr(args, name) for name in CLI_FIELDS}
    try:
        config = load_config(args.config, cli=overrides)
    except ConfigError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact_logging()
    if args.validate_config:
        return _validate(config)
    from device.app import run_device
    from device.fleet.balena_device import BalenaDeviceError
    from device.sources.base import SourceError

    try:
        return run_device(config, lambda: load_config(args.config, cli=overrides), Path(args.config) if args.config else None)
    except (BundleError, SourceError, BalenaDeviceError) as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2


def _experiment(args: argparse.Namespace) -> int:
    """The experiment commands, given the data folder and tags from the config (read here, in one place)."""
    from device.experiments.cli import StoreContext
    from device.experiments.cli import main as experiment_main

    try:
        config = load_config(args.config, cli={"data_dir": args.data_dir})
    except ConfigError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2
    return experiment_main(args, StoreContext(Path(config.data_dir), config.device_name, config.project, config.source))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "experiment":
        return _experiment(args)
    from device.datasets.package import write_synthetic_package

    manifest = write_synthetic_package(args.out, count=args.count, seed=args.seed, width=args.width, height=args.height,
                                       mode=args.mode)
    print(f"wrote {args.out}: {manifest.image_count} images, classes {', '.join(manifest.classes)}")
    return 0
