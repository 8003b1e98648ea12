"""`python -m device experiment ...`: start/stop/list experiments and save calibration profiles
from a shell. It works on the device's experiment store in its data folder, so it needs no login
and works whether or not the device runs; a running device follows within a second and writes
the start/stop events itself (a stopped one writes them when it next starts)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from device import __version__
from device.config import ConfigError, load_config
from device.experiments.calibration import CalibrationProfile, ExperimentError, MicrometerLine
from device.experiments.report import frames_csv, html_report, objects_csv
from device.experiments.store import ExperimentRequest, ExperimentStore, invalid
from device.experiments.summary import summarise
from device.tracking.experiment import experiment_tracking


def add_parser(sub: Any) -> None:
    """The `experiment` subcommand and its actions."""
    exp = sub.add_parser("experiment", help="start/stop/list experiments, calibration profiles, exports")
    exp.add_argument("--config", help="YAML config file (for data_dir, device_name, project)")
    exp.add_argument("--data-dir", help="the device's data folder (default: from config)")
    acts = exp.add_subparsers(dest="action", required=True)
    start = acts.add_parser("start", help="start an experiment (one at a time)")
    start.add_argument("name")
    for field in ("sample", "operator", "objective", "profile", "notes"):
        start.add_argument(f"--{field}", default="")
    acts.add_parser("stop", help="stop the running experiment")
    acts.add_parser("list", help="experiments, newest first (JSON)")
    summary = acts.add_parser("summary", help="summary of one experiment (JSON)")
    summary.add_argument("id")
    export = acts.add_parser("export", help="write <id>-frames.csv, <id>-objects.csv and <id>-report.html")
    export.add_argument("id")
    export.add_argument("--out", default=".", help="folder for the files")
    prof = acts.add_parser("profile", help="save a calibration profile: --um-per-pixel, or --line x1 y1 x2 y2 --length-um")
    prof.add_argument("name")
    prof.add_argument("--um-per-pixel", type=float)
    prof.add_argument("--line", type=float, nargs=4, metavar=("X1", "Y1", "X2", "Y2"))
    prof.add_argument("--length-um", type=float)
    prof.add_argument("--objective", default="")
    prof.add_argument("--camera", default="")


def _profile(args: argparse.Namespace) -> CalibrationProfile:
    um = args.um_per_pixel
    if args.line is not None:
        if args.length_um is None:
            raise ExperimentError("--line needs --length-um (the true length of the line in µm)")
        x1, y1, x2, y2 = args.line
        um = MicrometerLine(x1=x1, y1=y1, x2=x2, y2=y2, length_um=args.length_um).um_per_pixel()
    if um is None:
        raise ExperimentError("give --um-per-pixel, or --line X1 Y1 X2 Y2 with --length-um")
    return CalibrationProfile(name=args.name, um_per_pixel=um, objective=args.objective, camera=args.camera)


def _act(args: argparse.Namespace, store: ExperimentStore, device: str, project: str, source: str) -> Any:
    if args.action == "start":
        request = ExperimentRequest(**{k: getattr(args, k) for k in ("name", "sample", "operator", "objective", "profile", "notes")})
        return store.start(request, device, project, {"software": __version__, "source": source, "started_by": "cli"}).public()
    if args.action == "stop":
        return store.stop().public()
    if args.action == "list":
        return [e.public() for e in store.recent()]
    if args.action == "profile":
        return store.save_profile(_profile(args)).model_dump()
    try:
        experiment = store.get(args.id)
    except KeyError as exc:
        raise ExperimentError(f"no experiment '{args.id}' in {store.path}") from exc
    summary = summarise(experiment, store.frames(experiment.id), store.objects(experiment.id))
    summary["tracking"] = experiment_tracking(store.path, experiment.id, None)
    if args.action == "summary":
        return summary
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = store.frames(experiment.id)
    (out / f"{experiment.id}-frames.csv").write_text(frames_csv(frames, list(summary["classes"])), encoding="utf-8")
    with open(out / f"{experiment.id}-objects.csv", "w", encoding="utf-8") as fh:
        fh.writelines(objects_csv(store.objects(experiment.id)))
    (out / f"{experiment.id}-report.html").write_text(html_report(experiment, summary), encoding="utf-8")
    return {"written": [str(out / f"{experiment.id}-{n}") for n in ("frames.csv", "objects.csv", "report.html")]}


def main(args: argparse.Namespace) -> int:
    """Exit 0 with JSON on stdout, or 2 with the reason on stderr (nothing changed)."""
    try:
        config = load_config(args.config, cli={"data_dir": args.data_dir})
        store = ExperimentStore(config.data_dir / "experiments.sqlite")
        result = _act(args, store, config.device_name, config.project, config.source)
    except ValidationError as exc:
        print(f"error: {invalid(exc)}", file=sys.stderr)
        return 2
    except (ExperimentError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0
