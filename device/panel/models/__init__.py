"""Models: upload a validated bundle, list, choose the one the device runs (no restart), delete."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, render_template, request
from werkzeug.wrappers import Response

from device.models.bundle import BundleError
from device.panel.base import back, require_project, runtime, state
from device.panel.store import PanelError

bp = Blueprint("models", __name__, template_folder="templates", url_prefix="/panel/models")


def _running_label() -> str | None:
    device = runtime()
    card = device.model_card() if device is not None else None
    return card.label if card is not None else None


@bp.get("/")
def index() -> str:
    project = require_project()
    models = state().models.list(project)
    return render_template("models/index.html", project=project, models=models, running=_running_label(), has_runtime=runtime() is not None)


@bp.post("/")
def upload() -> Response:
    project = require_project()
    file = request.files.get("bundle")
    if file is None or not file.filename:
        flash("Choose a bundle zip to upload.", "error")
        return back("models.index")
    try:
        stored = state().models.add(project, file.read(), file.filename)
    except PanelError as exc:
        flash(f"Model not added: {exc}", "error")
        return back("models.index")
    flash(f"Model {stored.card.label} added. Choose 'Run it' to switch the device to it.", "ok")
    return back("models.index")


@bp.post("/<model_id>/activate")
def activate(model_id: str) -> Response:
    project = require_project()
    device = runtime()
    if device is None:
        flash("No device runs in this process, so there is nothing to switch.", "error")
        return back("models.index")
    try:
        card = device.switch_model(state().models.local_zip(project, model_id))
    except (PanelError, BundleError) as exc:
        flash(f"The device keeps its current model: {exc}", "error")
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
    if stored.card.label == _running_label():
        flash(f"{stored.card.label} is running now: switch to another model before deleting it.", "error")
        return back("models.index")
    state().models.delete(project, model_id)
    flash(f"Model {stored.card.label} deleted.", "ok")
    return back("models.index")


def metric_summary(metrics: dict[str, Any]) -> str:
    """A one-line digest of a card's metrics for the table."""
    parts = [f"{k}={v:.3f}" for k, v in metrics.items() if isinstance(v, (int, float))][:3]
    return ", ".join(parts)


bp.add_app_template_filter(metric_summary, "metric_summary")
