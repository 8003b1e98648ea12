"""What the trainer service checks before it accepts a job: the request, the package, the plan.

A device names objects in the shared store (never sends bytes over HTTP); they are fetched into a
staging folder, the package is validated exactly as `train` would (every image decoded, every
box checked) and the training plan is made, so a refusal comes back at once, with what was wrong
and what to do, instead of as a failed job an hour later. Only objects under the submitting
device's own prefix (`training/<device>/`) are read.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trainer.config import TrainConfig
from trainer.dataset import DatasetError, load_dataset_package, split_dataset
from trainer.objectstore import ObjectStore, StoreError, check_key

STORE_PREFIX = "training"
_PROJECT = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
# What a device may choose (the rest is the trainer's recipe); `epochs` lets a lab (or a test) ask
# for a short trial run.
DEVICE_OPTIONS = frozenset({"epochs", "input_size", "crop", "batch_size", "seed", "val_fraction", "time_limit_min",
                            "width_multiplier", "learning_rate", "eval_every"})


class Refused(ValueError):
    """A request the trainer will not take: `status` is the HTTP status, the message says why and what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def device_prefix(device: str) -> str:
    return f"{STORE_PREFIX}/{device}/"


def job_prefix(device: str, job_id: str) -> str:
    """Where a job's bundle and report go in the store."""
    return f"{STORE_PREFIX}/{device}/jobs/{job_id}"


@dataclass(frozen=True)
class Submission:
    project: str
    package: str
    held_out: str | None = None
    baseline: str | None = None  # the running model's bundle zip, to compare on the held-out frames
    options: dict[str, Any] = field(default_factory=dict)
    warm_start: bool = True  # start from the baseline's weights when they fit

    def as_request(self) -> dict[str, Any]:
        return {"project": self.project, "package": self.package, "held_out": self.held_out,
                "baseline": self.baseline, "options": self.options, "warm_start": self.warm_start}


def _key(body: dict[str, Any], name: str, device: str, required: bool) -> str | None:
    value = body.get(name)
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str) or not value:
        raise Refused(400, f"'{name}' must be the store key of a zip (under {device_prefix(device)})")
    try:
        check_key(value)
    except StoreError as exc:
        raise Refused(400, str(exc)) from None
    if not value.startswith(device_prefix(device)):
        raise Refused(403, f"'{name}' {value!r} is not under this device's prefix {device_prefix(device)}: "
                      "a device only hands the trainer its own objects")
    return value


def parse_submission(body: Any, device: str) -> Submission:
    """The JSON body of POST /v1/jobs (and /v1/plan) -> Submission, or Refused(400/403)."""
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object: {project, package, held_out?, baseline?, options?, warm_start?}")
    unknown = sorted(set(body) - {"project", "package", "held_out", "baseline", "options", "warm_start"})
    if unknown:
        raise Refused(400, f"unknown field(s) {', '.join(unknown)}: send project, package, held_out, baseline, options, warm_start")
    warm_start = body.get("warm_start", True)
    if not isinstance(warm_start, bool):
        raise Refused(400, "'warm_start' must be true (start from the running model's weights when they fit) or false")
    project = body.get("project")
    if not isinstance(project, str) or not _PROJECT.match(project):
        raise Refused(400, "'project' must be the project's short name (letters, digits, . _ -; at most 80)")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise Refused(400, "'options' must be an object of training options, e.g. {\"epochs\": 2}")
    refused = sorted(set(options) - DEVICE_OPTIONS)
    if refused:
        raise Refused(400, f"option(s) {', '.join(refused)} cannot be set from a device; allowed: {', '.join(sorted(DEVICE_OPTIONS))}")
    try:
        TrainConfig(**options)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise Refused(400, f"training options refused: {problems}") from None
    return Submission(project, str(_key(body, "package", device, True)), _key(body, "held_out", device, False),
                      _key(body, "baseline", device, False), dict(options), warm_start)


def _fetch(store: ObjectStore, key: str, dest: Path) -> None:
    try:
        store.download(key, dest)
    except KeyError:
        raise Refused(422, f"the trainer finds no '{key}' in its store ({store.url}): the device and the trainer must "
                      "share one object store (the device's panel.storage and the trainer's --store)") from None
    except StoreError as exc:
        raise Refused(503, f"the trainer cannot read its store: {exc}") from None


def _package_error(exc: DatasetError, path: Path, key: str) -> Refused:
    return Refused(422, f"the trainer refuses the package: {str(exc).replace(str(path), key)}")


def plan_summary(package: Path, key: str, options: dict[str, Any]) -> dict[str, Any]:
    """What will be trained: images, boxes per class, and the plan with its warnings."""
    from trainer.plan import describe, make_plan

    try:
        dataset = load_dataset_package(package)
    except DatasetError as exc:
        raise _package_error(exc, package, key) from None
    config = TrainConfig(**options)
    train, val = split_dataset(dataset.samples, config.val_fraction, config.seed)
    plan = make_plan(train, val, dataset.classes, config)
    boxes = {name: 0 for name in dataset.classes}
    for sample in dataset.samples:
        for c in sample.classes.tolist():
            boxes[dataset.classes[c]] += 1
    return {"classes": dataset.classes, "images": len(dataset.samples), "boxes_per_class": boxes,
            "train_images": plan.train_images, "val_images": plan.val_images, "epochs": plan.epochs,
            "steps_per_epoch": plan.steps_per_epoch, "expected_minutes": plan.expected_minutes,
            "warnings": list(plan.warnings), "summary": describe(plan)}


def _check_held_out(path: Path, key: str, classes: list[str]) -> dict[str, Any]:
    try:
        held = load_dataset_package(path)
    except DatasetError as exc:
        raise Refused(422, f"the trainer refuses the held-out package: {str(exc).replace(str(path), key)}") from None
    if held.classes != classes:
        raise Refused(422, f"the held-out package's classes {held.classes} differ from the training package's {classes}: "
                      "export both from the same project")
    return {"images": len(held.samples), "objects": int(sum(len(s.boxes) for s in held.samples))}


def stage(store: ObjectStore, staging_root: Path, submission: Submission, plan_only: bool = False) -> tuple[Path, dict[str, Any]]:
    """Fetch and check everything a job needs into a new folder; returns it and the plan summary.

    On any refusal the folder is removed: a refused job leaves nothing behind."""
    staging_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="staging-", dir=staging_root))
    try:
        _fetch(store, submission.package, folder / "package.zip")
        summary = plan_summary(folder / "package.zip", submission.package, submission.options)
        if not plan_only and submission.held_out:
            _fetch(store, submission.held_out, folder / "held_out.zip")
            summary["held_out"] = _check_held_out(folder / "held_out.zip", submission.held_out, summary["classes"])
        if not plan_only and submission.baseline:
            _fetch(store, submission.baseline, folder / "baseline.zip")
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise Refused(507, f"the trainer cannot stage the job ({exc.strerror or exc}): free disk space on the trainer "
                      "and press Train again") from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if plan_only:
        shutil.rmtree(folder, ignore_errors=True)
    return folder, summary
