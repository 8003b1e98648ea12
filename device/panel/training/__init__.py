"""Train: the no-code model loop. Check what will be trained, train on the trainer service, follow
it live, compare with the running model on the project's held-out frames, and run it here.

The trainer is reached with device/training_client.py (trainer.url, token in trainer.token_env);
packages and bundles go through the store shared with it (trainer.store, else the panel's). The
running device is reached only through the runtime protocol (model_card, switch_model).
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, current_app, flash, jsonify, render_template, request
from werkzeug.wrappers import Response

from device import storage as storage_ext
from device.models.bundle import BundleError
from device.panel.base import back, require_project, runtime, state
from device.panel.store import PanelError, Project
from device.panel.training import charts, packages
from device.storage import Storage, StorageError
from device.training_client import (
    DEFAULT_PORT,
    TrainerClient,
    TrainerError,
    TrainerRefused,
    TrainerSettings,
)

bp = Blueprint("training", __name__, template_folder="templates", static_folder="static",
               static_url_path="/panel/static/training", url_prefix="/panel")
bp.add_app_template_global(charts.bland_altman, "bland_altman")
STORE_KEY = "scopehive.training_store"
FINAL = ("done", "failed", "cancelled", "interrupted")


def _config() -> Any:
    return current_app.config.get("SCOPEHIVE") or current_app.config.get("SCOPEHIVE_CONFIG")


def settings() -> TrainerSettings:
    found = getattr(_config(), "trainer", None)
    return found if isinstance(found, TrainerSettings) else TrainerSettings()


def client() -> TrainerClient:
    return TrainerClient(settings(), str(getattr(_config(), "device_name", "device")))


def shared_store() -> Storage:
    """The store the trainer reads packages from: trainer.store, else the panel's own."""
    url = settings().store
    if not url:
        return storage_ext.get_storage()
    store: Storage | None = current_app.extensions.get(STORE_KEY)
    if store is None:
        panel = state().settings
        store = storage_ext.open_storage(url, panel.s3_access_key_env, panel.s3_secret_key_env)
        current_app.extensions[STORE_KEY] = store
    return store


def start_command() -> str:
    """The one command that starts a trainer beside this device (same store, a fresh token)."""
    store = settings().store or state().settings.storage or f"file://{(state().data_dir / 'store').resolve()}"
    token = secrets.token_urlsafe(18)
    return (f"SCOPEHIVE_TRAINER_TOKEN={token} python -m trainer worker --store '{store}'   "
            f"# then on the device: SCOPEHIVE_TRAINER__URL=http://<trainer host>:{DEFAULT_PORT} SCOPEHIVE_TRAINER_TOKEN={token}")


def _running_label() -> str | None:
    device = runtime()
    card = device.model_card() if device is not None else None
    return card.label if card is not None else None


@bp.get("/training")
def index() -> str:
    project = require_project()
    held = packages.load_held_out(state().projects.storage, project.slug)
    frames = packages.collect(state().projects, project, set(held), with_bytes=False)
    jobs, problem = [], None
    if settings().configured:
        try:
            jobs = client().jobs(project.slug)
        except TrainerError as exc:
            problem = str(exc)
    return render_template("training/index.html", project=project, counts=packages.summary(frames, project),
                           configured=settings().configured, trainer_url=settings().url, command=start_command(),
                           jobs=jobs, problem=problem, running=_running_label())


def _refuse(message: str) -> Response:
    flash(message, "error")
    return back("training.index")


def _prepare(project: Project) -> dict[str, Any]:
    """Fix the held-out set, write both packages and the running model's bundle to the shared store."""
    projects = state().projects
    ids = packages.annotated_ids(projects, project)
    held = packages.grow_held_out(ids, packages.load_held_out(projects.storage, project.slug))
    frames = packages.collect(projects, project, set(held))
    if not frames.train or not sum(frames.boxes.values()):
        raise PanelError("there is nothing to train on yet: annotate boxes on some images first (Annotate page); "
                         "images marked as having no objects alone teach nothing")
    packages.save_held_out(projects.storage, project.slug, held)
    prefix = f"training/{client().info()['device']}/{project.slug}"
    store = shared_store()
    body: dict[str, Any] = {"project": project.slug, "options": dict(settings().options),
                            "package": packages.put_content_addressed(store, prefix, "train", packages.package_bytes(project, frames.train))}
    notes = []
    if frames.held_out and sum(frames.held_out_boxes.values()):
        body["held_out"] = packages.put_content_addressed(store, prefix, "held-out", packages.package_bytes(project, frames.held_out))
        device = runtime()
        bundle, where = packages.running_bundle(state().models, project, device.model_card() if device else None,
                                                getattr(_config(), "model", None))
        if bundle is not None:
            body["baseline"] = packages.put_content_addressed(store, prefix, "running", bundle)
        notes.append(f"Compared with: {where}." if bundle is not None else f"No side-by-side comparison: {where}.")
    else:
        notes.append(f"No held-out frames yet (a project needs {packages.MIN_IMAGES_FOR_HELD_OUT} annotated images with boxes "
                     "before some are put aside): the new model cannot be compared with the running one.")
    return {"body": body, "frames": packages.summary(frames, project), "notes": notes}


@bp.post("/training/check")
def check() -> Response | str:
    project = require_project()
    if not settings().configured:
        return _refuse("No trainer is configured: start one with the command below, then set trainer.url.")
    try:
        prepared = _prepare(project)
        plan = client().plan({k: v for k, v in prepared["body"].items() if k in ("project", "package", "options")})
    except (PanelError, TrainerError, StorageError) as exc:
        return _refuse(_explain(exc))
    return render_template("training/review.html", project=project, prepared=prepared, plan=plan, running=_running_label())


def _explain(exc: Exception) -> str:
    """What went wrong and what to do, in the panel's words."""
    if isinstance(exc, TrainerRefused) and exc.status == 401:
        return f"The trainer refused this device's token: {exc}"
    if isinstance(exc, TrainerRefused) and exc.status == 422:
        return f"The trainer refused the package. {exc}. Fix it in the panel (Annotate) and press Train again."
    if isinstance(exc, StorageError):
        return f"The package could not be written to the store shared with the trainer: {exc}"
    return f"Nothing was started: {exc}"


@bp.post("/training/start")
def start() -> Response:
    project = require_project()
    prefix = "training/"
    body: dict[str, Any] = {"project": project.slug, "options": dict(settings().options)}
    for field in ("package", "held_out", "baseline"):
        value = request.form.get(field, "").strip()
        if value:
            if not value.startswith(prefix) or f"/{project.slug}/" not in value:
                return _refuse(f"'{field}' is not a package of project {project.name}: press Train again")
            body[field] = value
    if "package" not in body:
        return _refuse("Nothing to train: press Train to check the project first.")
    if "baseline" in body:
        body["warm_start"] = request.form.get("warm_start") == "1"
    try:
        others = [j for j in client().jobs(project.slug) if j["state"] in ("queued", "running")]
        job = client().submit(body)
    except TrainerError as exc:
        return _refuse(_explain(exc))
    if others:
        flash(f"Queued behind {len(others)} job(s) of this project already on the trainer: it starts when they end.", "info")
    else:
        flash("Training submitted.", "ok")
    return back("training.job", job_id=job["id"])


def _job(job_id: str) -> dict[str, Any]:
    return client().job(job_id)


@bp.get("/training/jobs/<job_id>")
def job(job_id: str) -> str | Response:
    project = require_project()
    try:
        found = _job(job_id)
    except TrainerError as exc:
        return _refuse(_explain(exc) if not isinstance(exc, TrainerRefused) or exc.status != 404 else str(exc))
    fleet, fleet_setup = _fleet()
    return render_template("training/job.html", project=project, job=found, final=found["state"] in FINAL,
                           running=_running_label(), store_problem=None, fleet=fleet, fleet_setup=fleet_setup,
                           rollout=found.get("rollout"))


def _fleet() -> tuple[dict[str, Any] | None, str]:
    """The fleet the trainer rolls out to, or None and how to give it one."""
    try:
        info = client().info()
    except TrainerError as exc:
        return None, f"The trainer does not say whether it has a fleet ({exc})."
    fleet = info.get("fleet")
    return (fleet if isinstance(fleet, dict) else None), str(info.get("fleet_setup") or "")


@bp.get("/api/training/jobs/<job_id>")
def job_json(job_id: str) -> tuple[Response, int] | Response:
    require_project()
    try:
        return jsonify(_job(job_id))
    except TrainerRefused as exc:
        return jsonify(error=str(exc)), exc.status if 400 <= exc.status < 500 else 502
    except TrainerError as exc:
        return jsonify(error=str(exc)), 503


@bp.get("/training/jobs/<job_id>/report.png", defaults={"figure": "report_png"}, endpoint="report")
@bp.get("/training/jobs/<job_id>/held-out-worst.png", defaults={"figure": "held_out_worst_png"}, endpoint="worst")
def figure(job_id: str, figure: str) -> Response | tuple[str, int]:
    require_project()
    try:
        key = (_job(job_id).get("result") or {}).get(figure)
        if not key:
            return "this job has no report", 404
        return Response(shared_store().get(key), mimetype="image/png")
    except (TrainerError, KeyError, StorageError) as exc:
        return f"no report: {exc}", 404


@bp.post("/training/jobs/<job_id>/cancel")
def cancel(job_id: str) -> Response:
    require_project()
    try:
        found = client().cancel(job_id)
    except TrainerError as exc:
        flash(_explain(exc), "error")
        return back("training.job", job_id=job_id)
    flash("Cancelled: nothing of it will be offered as a model." if found["state"] == "cancelled" else
          "Stopping: the trainer ends the run at once and publishes nothing.", "ok")
    return back("training.job", job_id=job_id)


@bp.post("/training/jobs/<job_id>/deploy")
def deploy(job_id: str) -> Response:
    """Run it here: the bundle joins the project's models (checked as an upload is), then the device switches.

    A model worse than the running one on the held-out frames needs the confirmation that names
    the classes it is worse on; without it nothing changes."""
    project = require_project()
    device = runtime()
    if device is None:
        flash("No device runs in this process, so there is nothing to switch.", "error")
        return back("training.job", job_id=job_id)
    checked = _deployable(job_id, "run", "Not switched", "run it")
    if isinstance(checked, Response):
        return checked
    result, worse = checked
    label = result["model"]["label"]
    try:
        data = shared_store().get(result["bundle"])
        stored = state().models.add(project, data, f"{label.replace(':', '-')}.zip")
        card = device.switch_model(state().models.local_zip(project, stored.id))
    except KeyError:
        flash(f"The bundle {result['bundle']} is not in the shared store (removed?): the device keeps its model.", "error")
        return back("training.job", job_id=job_id)
    except (PanelError, BundleError, StorageError) as exc:
        flash(f"The device keeps its current model: {exc}", "error")
        return back("training.job", job_id=job_id)
    flash(f"The device now runs {card.label}{' (confirmed although worse on ' + ', '.join(worse) + ')' if worse else ''}.", "ok")
    return back("training.job", job_id=job_id)


def _unconfirmed(worse: list[str]) -> bool:
    """A model worse on some classes goes nowhere without the ticked box that names exactly those classes."""
    return bool(worse) and request.form.get("confirm_worse", "") != ", ".join(worse)


def _deployable(job_id: str, what: str, refused: str, action: str) -> tuple[dict[str, Any], list[str]] | Response:
    """A done job's result and the classes it is worse on, or the redirect to its page saying why not.

    A model worse than the running one on the held-out frames needs the ticked box that names the
    classes it is worse on (the same check for "Run it here" and "Roll out")."""
    try:
        found = _job(job_id)
    except TrainerError as exc:
        flash(_explain(exc), "error")
        return back("training.job", job_id=job_id)
    result = found.get("result") or {}
    if found["state"] != "done" or not result.get("bundle"):
        flash(f"This job has no model to {what} ({found['state']}: {found['message']}).", "error")
        return back("training.job", job_id=job_id)
    worse = (result.get("comparison") or {}).get("worse_classes") or []
    if _unconfirmed(worse):
        flash(f"{refused}: on the held-out frames this model is worse than the running one on {', '.join(worse)}. "
              f"To {action} anyway, tick the box that names these classes.", "error")
        return back("training.job", job_id=job_id)
    return result, worse


@bp.post("/training/jobs/<job_id>/rollout")
def rollout(job_id: str) -> Response:
    """Roll out to the trainer's fleet, canary first: the same named confirmation as "Run it here" for a worse model."""
    require_project()
    checked = _deployable(job_id, "roll out", "Not rolled out", "roll it out")
    if isinstance(checked, Response):
        return checked
    result, worse = checked
    body: dict[str, Any] = {"confirm_worse": ", ".join(worse)} if worse else {}
    try:
        started = client().rollout(job_id, body)
    except TrainerError as exc:
        flash(f"Not rolled out: {exc}", "error")
        return back("training.job", job_id=job_id)
    fleet = (started.get("rollout") or {}).get("fleet", "the fleet")
    flash(f"Rolling {result['model']['label']} out to fleet {fleet}: the canary first, then the rest"
          f"{' (confirmed although worse on ' + ', '.join(worse) + ')' if worse else ''}.", "ok")
    return back("training.job", job_id=job_id)


@bp.post("/training/jobs/<job_id>/rollback")
def rollback(job_id: str) -> Response:
    require_project()
    try:
        client().rollback(job_id)
    except TrainerError as exc:
        flash(f"Not rolled back: {exc}", "error")
        return back("training.job", job_id=job_id)
    flash("Rolling back: the devices of this rollout return to their previous models.", "ok")
    return back("training.job", job_id=job_id)
