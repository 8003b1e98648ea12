"""`python -m trainer rollout BUNDLE --fleet F ...` and `python -m trainer rollback --fleet F`.

trainer/cli.py registers these with `register(subparsers)`; `main(argv)` runs them alone. The
trainer service's "Roll out" (trainer/rollouts.py) calls the same `connect_fleet`, `publish_ref`
and `annotate_*` functions, so a rollout from the panel and one from a terminal are the same.
Rollout = publish (trainer/publish.py) -> canary stage -> the rest -> history + Grafana annotation.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.fleet.balena_api import BalenaFleet, BalenaSettings, FleetError, connect
from trainer.fleet.history import HistoryStore
from trainer.fleet.rollout import RolloutPlan, RolloutResult, rollback, rollout
from trainer.fleet.store import FleetStore

log = logging.getLogger(__name__)
STORE_ENV = "SCOPEHIVE_STORE"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fleet", required=True, help="balena fleet slug, e.g. myorg/scopehive")
    parser.add_argument("--store", default=os.environ.get(STORE_ENV, ""),
                        help=f"object store URL s3://bucket?endpoint=host:port[&secure=0] (default ${STORE_ENV}); "
                        "keys from SCOPEHIVE_S3_ACCESS_KEY / SCOPEHIVE_S3_SECRET_KEY")
    parser.add_argument("--wait-s", type=float, default=600.0, help="longest wait for one stage's devices (0: don't wait)")
    parser.add_argument("--poll-s", type=float, default=5.0, help="how often device answers are read")
    parser.add_argument("--balena-host", default="balena-cloud.com", help="balena_host (openBalena: your domain)")
    parser.add_argument("--balena-api-url", default=os.environ.get("BALENA_API_URL", ""),
                        help="API URL when not https://api.<host>/ (default $BALENA_API_URL)")


def register(subparsers: Any) -> None:
    """Add `rollout` and `rollback` to the trainer's argparse subcommands."""
    out = subparsers.add_parser("rollout", help="publish a bundle and switch fleet devices to it, canary first")
    out.add_argument("bundle", help="bundle folder (published first), or name:version already published")
    _common(out)
    out.add_argument("--device-type", help="only devices of this balena device type, e.g. jetson-nano")
    out.add_argument("--devices", nargs="+", default=[], metavar="UUID", help="only these devices (uuid prefixes ok)")
    out.add_argument("--canary", type=int, default=1, help="devices switched and checked before the rest (default 1)")
    out.add_argument("--fleet-default", action="store_true",
                     help="also set SCOPEHIVE_FLEET__MODEL_REF for new devices (restarts every device's service once)")
    out.set_defaults(func=run_rollout)
    back = subparsers.add_parser("rollback", help="return the devices of the last rollout to their previous model")
    _common(back)
    back.set_defaults(func=run_rollback)


@dataclass(frozen=True)
class FleetAccess:
    """Which fleet, and how to reach it: what both the CLI and the trainer service's rollouts need."""

    fleet: str
    store: str
    balena_host: str = "balena-cloud.com"
    balena_api_url: str = ""


def publish_ref(bundle: str, store_url: str) -> tuple[str, str | None]:
    """Publish a bundle folder: (its name:version, where it went); a name:version passes through (None)."""
    path = Path(bundle)
    if not path.exists() and ":" in bundle:
        return bundle, None
    card = json.loads((path / "model.json").read_text()) if (path / "model.json").is_file() else None
    if card is None:
        raise FleetError(f"{bundle}: not a bundle folder with model.json, nor a published name:version")
    from trainer.publish import publish_bundle

    where = publish_bundle(path, store_url)
    return f"{card['name']}:{card['version']}", where


def connect_fleet(access: FleetAccess) -> tuple[BalenaFleet, HistoryStore]:
    """The fleet's devices (token from BALENA_API_KEY) and its rollout history in the store."""
    if not access.store:
        raise FleetError(f"no object store: give --store s3://bucket?endpoint=host:port or set {STORE_ENV}")
    settings = BalenaSettings(host=access.balena_host, api_url=access.balena_api_url,
                              token=os.environ.get("BALENA_API_KEY", ""))
    if not settings.token:
        raise FleetError("BALENA_API_KEY is not set: create an API key in the balena dashboard (Preferences) and export it")
    fleet = BalenaFleet(connect(settings), access.fleet)
    return fleet, HistoryStore(FleetStore.from_url(access.store), access.fleet)


def _access(args: argparse.Namespace) -> FleetAccess:
    return FleetAccess(args.fleet, args.store, args.balena_host, args.balena_api_url)


def annotate(fleet: str, model_ref: str, devices: list[str], note: str) -> None:
    """Mark a rollout on the Grafana dashboards when GRAFANA_URL is set; never fails the rollout."""
    try:
        from grafana.annotations import mark_rollout, settings_from_env

        settings = settings_from_env()
        if settings is None:
            return
        name, _, version = model_ref.partition(":")
        mark_rollout(settings, fleet, name, f"{version} ({note})", devices)
    except Exception as exc:  # annotation is a courtesy: report it, keep the rollout's outcome
        print(f"warning: could not add the Grafana annotation ({exc})", file=sys.stderr)


def annotate_rollout(fleet: str, result: RolloutResult) -> None:
    touched = [uuid for _, stage in result.stages for uuid in stage.devices]
    annotate(fleet, result.model_ref, touched, "rollout" if result.ok else "rollout stopped early")


def annotate_rollback(fleet: str, result: RolloutResult) -> None:
    for target, stage in result.stages:  # one annotation per restored model
        if target:
            annotate(fleet, target, stage.devices, f"rollback of {result.model_ref}")


def run_rollout(args: argparse.Namespace) -> int:
    fleet, history = connect_fleet(_access(args))
    model_ref, where = publish_ref(args.bundle, args.store)
    if where is not None:
        print(f"published {model_ref} to {where}")
    plan = RolloutPlan(model_ref=model_ref, device_type=args.device_type,
                       devices=args.devices, canary=args.canary, wait_s=args.wait_s, poll_s=args.poll_s,
                       fleet_default=args.fleet_default)
    result = rollout(fleet, history, plan)
    print(result.summary())
    annotate_rollout(args.fleet, result)
    return 0 if result.ok else 1


def run_rollback(args: argparse.Namespace) -> int:
    fleet, history = connect_fleet(_access(args))
    plan = RolloutPlan(model_ref="rollback:previous", wait_s=args.wait_s, poll_s=args.poll_s)
    result = rollback(fleet, history, plan)
    print("rolled back " + result.summary())
    annotate_rollback(args.fleet, result)
    return 0 if result.ok else 1


COMMANDS = ("rollout", "rollback")


def run(args: argparse.Namespace) -> int:
    """Run a parsed rollout/rollback; known failures print one `error:` line and return 2."""
    try:
        return int(args.func(args))
    except (RuntimeError, ValueError) as exc:  # FleetError, StoreError, PublishError, bad settings
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    register(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))
