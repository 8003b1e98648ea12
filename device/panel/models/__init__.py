"""Models: upload a validated bundle, list, choose the one the device runs (no restart), delete."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, flash, render_template, request
from werkzeug.wrappers import Response

from device.inbox.qc import status_of
from device.models.bundle import BundleError, ModelCard
from device.panel.base import back, require_project, runtime, state
from device.panel.inbox.spotchecks import project_qc
from device.panel.store import PanelError, Project

bp = Blueprint("models", __name__, template_folder="templates", url_prefix="/panel/models")


def _running_card() -> ModelCard | None:
    device = runtime()
    card: ModelCard | None = device.model_card() if device is not None else None
    return card


@bp.get("/")
def index() -> str:
    project = require_project()
    models = state().models.list(project)
    running = _running_card()
    running_id = state().models.running_id(project, running)
    feed = runtime().feed_models() if runtime() is not None else []  # type: ignore[union-attr]
    return render_template(
        "models/index.html", project=project, models=models, running=running.label if running else None,
        running_id=running_id, has_runtime=runtime() is not None,
        running_elsewhere=running if running is not None and running_id is None else None,  # --model / config, not uploaded
        feed=feed, qc=qc_rows(project, [running.label if running else None, *(m.card.label for m in models),
                                         *(f.get("label") for f in feed)]),
    )


def qc_rows(project: Project, labels: list[str | None]) -> list[dict[str, Any]]:
    """Count QC of every model this page names and every model with spot checks: its agreement
    rows, or none (the page then says "not checked yet")."""
    table = project_qc(state().projects, project)
    named = list(dict.fromkeys([label for label in labels if label] + list(table)))
    return [{"model": label, "rows": [r.public() for r in table.get(label, [])], "status": status_of(label, table)}
            for label in named]


@bp.post("/")
def upload() -> Response:
    project = require_project()
    file = request.files.get("bundle")
    if file is None or not file.filename:
        flash("Choose a bundle zip to upload.", "error")
        return back("models.index")
    known = {m.id for m in state().models.list(project)}
    try:
        stored = state().models.add(project, file.read(), file.filename)
    except PanelError as exc:
        flash(f"Model not added: {exc}", "error")
        return back("models.index")
    running = stored.id == state().models.running_id(project, _running_card())
    if stored.id in known:
        flash(f"{stored.card.label} is already here (uploaded as {stored.file_name}): nothing was added.", "info")
    elif running:
        flash(f"Model {stored.card.label} added: it checks out, and the device already runs it.", "ok")
    else:
        flash(f"Model {stored.card.label} added: it checks out. Choose 'Run it' to switch the device to it.", "ok")
    return back("models.index")


@bp.post("/<model_id>/activate")
def activate(model_id: str) -> Response:
    project = require_project()
    device = runtime()
    if device is None:
        flash("No device runs in this process, so there is nothing to switch.", "error")
        return back("models.index")
    try:
        stored = state().models.get(project, model_id)
        path = state().models.local_zip(project, model_id)
        card = device.switch_model(path)
    except PanelError as exc:
        flash(f"The device keeps its current model: {exc}", "error")
        return back("models.index")
    except BundleError as exc:  # never show the cache folder: name the bundle the user uploaded
        message = str(exc).replace(str(path.resolve()), stored.file_name).replace(str(path), stored.file_name)
        message = message.replace(str(state().models.cache_dir.resolve()), "(cache)").replace(str(state().models.cache_dir), "(cache)")
        flash(f"The device keeps its current model: {message}", "error")
        return back("models.index")
    flash(f"The device now runs {card.label}.", "ok")
    return back("models.index")


@bp.post("/<model_id>/delete")
def delete(model_id: str) -> Response:
    project = require_project()
    try:
        stored = state().models.get(project, model_id)
    except PanelError as exc:
        flash(str(exc), "error")
        return back("models.index")
    if stored.id == state().models.running_id(project, _running_card()):
        flash(f"{stored.card.label} is running now: switch to another model before deleting it.", "error")
        return back("models.index")
    state().models.delete(project, model_id)
    flash(f"Model {stored.card.label} deleted ({stored.file_name}).", "ok")
    return back("models.index")


def metric_summary(metrics: dict[str, Any]) -> str:
    """A one-line digest of a card's metrics for the table."""
    parts = [f"{k}={v:.3f}" for k, v in metrics.items() if isinstance(v, (int, float))][:3]
    return ", ".join(parts)


bp.add_app_template_filter(metric_summary, "metric_summary")


# ---- several models on the feed ("run beside") ----------------------------------------------------
def feed_name(card: ModelCard, taken: list[str]) -> str:
    """A free slot name for a bundle run beside: its model name, then name-2, name-3, ..."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", card.name)[:50].strip("-.") or "model"
    name, n = base, 1
    while name in taken or name == "main":
        n += 1
        name = f"{base}-{n}"
    return name


@bp.post("/<model_id>/beside")
def beside(model_id: str) -> Response:
    """Run this bundle beside the current model(s), on every k-th frame."""
    project = require_project()
    device = runtime()
    if device is None:
        flash("No device runs in this process, so there is nothing to add a model to.", "error")
        return back("models.index")
    every = request.form.get("every", "1").strip() or "1"
    if not (every.isascii() and every.isdigit()) or not 1 <= int(every) <= 1000:  # "٣" is a digit to Python
        flash(f"'Every' must be a whole number of frames from 1 to 1000, not '{every[:20]}': nothing was added.", "error")
        return back("models.index")
    try:
        stored = state().models.get(project, model_id)
        already = next((m["name"] for m in device.feed_models() if m.get("label") == stored.card.label), None)
        if already is not None:
            flash(f"{stored.card.label} already runs on this feed (as '{already}'): nothing was added. "
                  "Stop it there first to run it at another rate.", "error")
            return back("models.index")
        name = feed_name(stored.card, [m["name"] for m in device.feed_models()])
        card = device.add_model(name, state().models.local_zip(project, model_id), int(every))
    except (PanelError, BundleError, ValueError) as exc:
        flash(f"Nothing was added: {exc}", "error")
        return back("models.index")
    flash(f"{card.label} now runs beside as '{name}', on every {every} frame(s).", "ok")
    return back("models.index")


@bp.post("/feed/<name>/remove")
def remove_from_feed(name: str) -> Response:
    require_project()
    device = runtime()
    try:
        if device is None:
            raise KeyError("no device runs in this process")
        device.remove_model(name)
    except (KeyError, ValueError) as exc:
        flash(f"Nothing was stopped: {str(exc).strip(chr(39))}", "error")
        return back("models.index")
    flash(f"'{name}' stopped; the other models run on.", "ok")
    return back("models.index")


@bp.post("/feed/<name>/overlay")
def overlay(name: str) -> Response:
    require_project()
    device = runtime()
    shown = request.form.get("shown", "")
    if shown not in ("0", "1"):
        flash("overlay needs shown=0 or shown=1", "error")
        return back("models.index")
    try:
        if device is None:
            raise KeyError("no device runs in this process")
        device.set_overlay(name, shown == "1")
    except KeyError as exc:
        flash(f"Nothing changed: {str(exc).strip(chr(39))}", "error")
        return back("models.index")
    flash(f"Boxes of '{name}' are {'drawn' if shown == '1' else 'hidden'} on the stream.", "ok")
    return back("models.index")
