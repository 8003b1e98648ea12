"""`python -m device experiment ...`: start/stop/list experiments and save calibration profiles
from a shell. It works on the device's experiment store in its data folder, so it needs no login
and works whether or not the device runs; a running device follows within a second and writes
the start/stop events itself (a stopped one writes them when it next starts).

The top-level CLI (device/cli.py) reads the config and passes the data folder, device, project and
source down as a StoreContext: this package never reads the whole device config. Only `start` and
`profile` may create the data folder and its store; the others refuse a folder that is not there
(a typo in --data-dir must not leave an empty store behind).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from device import __version__, jsonsafe
from device.experiments.calibration import CalibrationProfile, ExperimentError, MicrometerLine
from device.experiments.report import frames_csv, html_report, objects_csv, objects_geojson
from device.experiments.store import ExperimentRequest, ExperimentStore, invalid
from device.experiments.summary import summarise
from device.tracking.experiment import experiment_tracking

STORE_FILE = "experiments.sqlite"
CREATING_ACTIONS = frozenset({"start", "profile"})  # the first experiment or profile makes the store


@dataclass(frozen=True)
class StoreContext:
    """Where the store is and what a started experiment is tagged with (from the device config)."""

    data_dir: Path
    device: str = ""
    project: str = ""
    source: str = ""


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
    export = acts.add_parser("export", help="write <id>-frames.csv, <id>-objects.csv, <id>-objects.geojson (QuPath) and <id>-report.html")
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


def _open_store(action: str, data_dir: Path) -> ExperimentStore | None:
    """The store, or None when a read finds no store yet; ExperimentError for a missing data folder."""
    path = data_dir / STORE_FILE
    if action in CREATING_ACTIONS or path.is_file():
        return ExperimentStore(path)
    if not data_dir.is_dir():
        raise ExperimentError(f"the data folder {data_dir} does not exist: check --data-dir (or data_dir in the config); "
                              "nothing was created")
    return None


def _without_store(args: argparse.Namespace, data_dir: Path) -> Any:
    """What a command answers in a data folder where no experiment was ever started."""
    if args.action == "list":
        return []
    if args.action == "stop":
        raise ExperimentError("no experiment is running")
    raise ExperimentError(f"no experiment '{args.id}' in {data_dir / STORE_FILE}")


def _act(args: argparse.Namespace, store: ExperimentStore, context: StoreContext) -> Any:
    if args.action == "start":
        request = ExperimentRequest(**{k: getattr(args, k) for k in ("name", "sample", "operator", "objective", "profile", "notes")})
        provenance = {"software": __version__, "source": context.source, "started_by": "cli"}
        return store.start(request, context.device, context.project, provenance).public()
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
    with open(out / f"{experiment.id}-objects.geojson", "w", encoding="utf-8") as fh:
        fh.writelines(objects_geojson(store.objects(experiment.id), list(summary["classes"])))
    (out / f"{experiment.id}-report.html").write_text(html_report(experiment, summary), encoding="utf-8")
    names = ("frames.csv", "objects.csv", "objects.geojson", "report.html")
    return {"written": [str(out / f"{experiment.id}-{n}") for n in names]}


def main(args: argparse.Namespace, context: StoreContext) -> int:
    """Exit 0 with JSON on stdout, or 2 with the reason on stderr (nothing changed)."""
    try:
        store = _open_store(args.action, context.data_dir)
        result = _without_store(args, context.data_dir) if store is None else _act(args, store, context)
    except ValidationError as exc:
        print(f"error: {invalid(exc)}", file=sys.stderr)
        return 2
    except ExperimentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(jsonsafe.dumps(result, indent=2, ensure_ascii=False))
    return 0
