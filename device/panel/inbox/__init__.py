"""Review inbox: the device's frames most worth a human look as a queue; accept, fix or skip.

Accepted frames join the current project through the project store's own frame and annotation
paths (as Capture does), with the model's boxes as their annotation; Fix accepts and opens the
annotator on the new image. The frames and their reasons come from device/inbox (docs/inbox.md)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import cv2
import numpy as np
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as WerkzeugResponse

from device.monitoring import SECTIONS, MonitoringError
from device.panel.base import project_for_api, require_project, runtime, state
from device.panel.capture import public_source
from device.panel.imaging import jpeg, to_display
from device.panel.inbox.spotchecks import (
    inbox_of,
    project_qc,
    publish_qc,
    spot_check_of,
    spot_pairs,
)
from device.panel.jsonbody import json_object
from device.panel.records import Acquisition
from device.panel.store import Box, ImageMeta, PanelError, Project

bp = Blueprint("inbox", __name__, template_folder="templates", url_prefix="/panel")
COLOUR = (0, 200, 255)  # proposals are drawn in one colour: they are the model's, not yet the project's


def _inbox() -> Any:
    return inbox_of(runtime())


def _store() -> Any:
    inbox = _inbox()
    if inbox is None:
        abort(503, description="no review inbox on this device: it needs a running device with inbox.enabled")
    return inbox.store


def _item(item_id: str) -> Any:
    try:
        return _store().get(item_id)
    except KeyError as exc:
        abort(404, description=str(exc.args[0]))


def _proposals(record: dict[str, Any], pipeline: str | None) -> dict[str, Any] | None:
    """The boxes of the chosen model (default: the main model, the first one recorded)."""
    models = record.get("models", [])
    chosen = [m for m in models if pipeline in (None, m.get("pipeline"))]
    return chosen[0] if chosen else None


def _summary(item: Any) -> dict[str, Any]:
    record = item.public()
    return {**record, "proposals": [{"pipeline": m["pipeline"], "model": m["model"], "boxes": len(m["boxes"])}
                                    for m in record.get("models", [])]}


@bp.get("/inbox", strict_slashes=False)
def index() -> str:
    project = require_project()
    inbox = _inbox()
    items = [_summary(i) for i in reversed(inbox.store.items())] if inbox is not None else []
    device = runtime()
    checks = device.model_checks() if callable(getattr(device, "model_checks", None)) else None
    return render_template("inbox/index.html", project=project, items=items, has_inbox=inbox is not None,
                           status=inbox.status() if inbox is not None else None, checks=settings_form(checks))


def settings_form(checks: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The model checks' settings as form rows: section, field, value, kind, what it does."""
    if checks is None:
        return []
    rows = []
    for section, model in SECTIONS.items():
        for name, info in model.model_fields.items():
            kind = {bool: "bool", int: "int", float: "float"}.get(info.annotation)  # type: ignore[arg-type]
            if kind is not None:  # the seed (tests only) is not offered
                rows.append({"section": section, "name": name, "value": checks[section][name], "kind": kind,
                             "help": info.description or ""})
    return rows


@bp.post("/inbox/settings")
def save_settings() -> WerkzeugResponse:
    """The Review page's settings form: every offered field, typed by its setting; all or nothing."""
    require_project()
    rows = settings_form(_checks().model_checks())
    changes: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = f"{row['section']}.{row['name']}"
        raw = request.form.get(key, "")
        try:
            value: Any = raw == "on" if row["kind"] == "bool" else (int(raw) if row["kind"] == "int" else float(raw))
        except ValueError:
            flash(f"{row['section']} {row['name'].replace('_', ' ')}: “{raw[:40]}” is not a number; nothing was changed", "error")
            return redirect(url_for("inbox.index"))
        changes.setdefault(row["section"], {})[row["name"]] = value
    try:
        _checks().configure_model_checks(changes)
    except MonitoringError as exc:
        flash(f"{exc}; nothing was changed", "error")
        return redirect(url_for("inbox.index"))
    flash("Saved: the drift alarm and the review inbox use the new settings now (drift windows restart).", "info")
    return redirect(url_for("inbox.index"))


@bp.get("/inbox/<item_id>/image.jpg")
def image(item_id: str) -> Response:
    """The frame for display with the main model's boxes drawn as proposals."""
    item = _item(item_id)
    shown = np.ascontiguousarray(to_display(_store().image(item_id)))
    if shown.ndim == 2:
        shown = cv2.cvtColor(shown, cv2.COLOR_GRAY2BGR)
    model = _proposals(item.record, request.args.get("model"))
    for x1, y1, x2, y2 in (model or {}).get("boxes", []):
        cv2.rectangle(shown, (int(x1), int(y1)), (int(x2), int(y2)), COLOUR, 1)
    return Response(jpeg(shown), mimetype="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@bp.get("/api/inbox")
def listing() -> dict[str, Any]:
    """The inbox's frames, newest first, with their reasons and the models' box counts."""
    inbox = _inbox()
    if inbox is None:
        abort(503, description="no review inbox on this device: it needs a running device with inbox.enabled")
    return {"items": [_summary(i) for i in reversed(inbox.store.items())], **inbox.status()}


def accept_item(project: Project, item_id: str, pipeline: str | None) -> tuple[ImageMeta, int, int]:
    """The frame into the project with the model's boxes (classes matched by name): (image, boxes, dropped)."""
    item = _item(item_id)
    model = _proposals(item.record, pipeline)
    if model is None:
        abort(400, description=f"no boxes of a model named '{pipeline}' were kept with this frame")
    ids = {c.name: c.id for c in project.classes}
    names = model.get("classes", [])
    boxes, dropped = [], 0
    width, height = float(item.record.get("width", 0)), float(item.record.get("height", 0))
    for corners, cls in zip(model["boxes"], model["class_ids"], strict=True):
        x1, x2 = (min(max(float(v), 0.0), width) for v in corners[0::2])
        y1, y2 = (min(max(float(v), 0.0), height) for v in corners[1::2])
        name = names[cls] if 0 <= cls < len(names) else None
        if name not in ids or x2 <= x1 or y2 <= y1:
            dropped += 1
            continue
        boxes.append(Box(x1=x1, y1=y1, x2=x2, y2=y2, class_id=ids[name]))
    projects = state().projects
    spot = spot_check_of(item.record)
    meta = projects.add_frame(project.slug, _store().image(item_id), source="inbox", acquisition=_acquisition(item.record, model),
                              spot_check=spot)
    try:
        projects.save_annotation(project.slug, meta.id, 0, boxes)
    except PanelError as exc:
        projects.delete_image(project.slug, meta.id)
        abort(400, description=f"the frame was not added: {exc}")
    _store().delete(item_id)
    if spot is not None:
        publish_qc(_inbox(), projects, project, spot)
    return meta, len(boxes), dropped


def _acquisition(record: dict[str, Any], model: dict[str, Any]) -> Acquisition:
    config = current_app.config.get("SCOPEHIVE")
    captured = record.get("captured_at")
    return Acquisition(device=str(getattr(config, "device_name", "") or "unknown"), um_per_pixel=record.get("um_per_pixel"),
                       source=public_source(str(getattr(config, "source", ""))), model=model.get("model"),
                       frame_index=record.get("frame_index"),
                       captured_at=datetime.fromtimestamp(captured, timezone.utc) if captured else None)


@bp.post("/api/projects/<slug>/inbox/<item_id>/accept")
def accept(slug: str, item_id: str) -> tuple[dict[str, Any], int]:
    """Body (optional): {model: the slot whose boxes to keep, default the main model}."""
    project = project_for_api(slug)
    body = request.get_json(silent=True) or {}
    pipeline = body.get("model") if isinstance(body, dict) else None
    if pipeline is not None and not isinstance(pipeline, str):
        abort(400, description="'model' must be the name of a model on the feed, e.g. \"main\"")
    meta, kept, dropped = accept_item(project, item_id, pipeline)
    return {"image": meta.model_dump(mode="json"), "boxes": kept, "dropped": dropped,
            "fix": url_for("annotate.index", image=meta.id)}, 201


@bp.get("/api/projects/<slug>/qc")
def qc(slug: str) -> dict[str, Any]:
    """Count QC of the project's reviewed spot checks: model label -> agreement rows (docs/inbox.md)."""
    project = project_for_api(slug)
    table = project_qc(state().projects, project)
    return {"models": {label: [r.public() for r in rows] for label, rows in table.items()},
            "spot_checks": len({p.frame for p in spot_pairs(state().projects, project)})}


def _checks() -> Any:
    device = runtime()
    if device is None or not callable(getattr(device, "model_checks", None)):
        abort(503, description="no running device in this process: its drift and inbox settings are in its config")
    return device


@bp.get("/api/model-checks")
def model_checks() -> dict[str, Any]:
    """The drift alarm and review inbox settings in force (docs/drift.md, docs/inbox.md)."""
    return dict(_checks().model_checks())


@bp.post("/api/model-checks")
def configure_model_checks() -> dict[str, Any]:
    """Body {"drift": {field: value}, "inbox": {field: value}}: validated whole, then applied while running."""
    device = _checks()
    body = json_object('send JSON {"drift": {...}, "inbox": {...}}')
    try:
        return dict(device.configure_model_checks(body))
    except MonitoringError as exc:
        abort(400, description=f"{exc}; nothing was changed")


@bp.post("/api/inbox/<item_id>/skip")
def skip(item_id: str) -> dict[str, Any]:
    """Remove the frame from the inbox unreviewed (its files go with it)."""
    _item(item_id)
    _store().delete(item_id)
    return {"skipped": item_id, "left": len(_store().items())}


@bp.post("/inbox/<item_id>/review")
def review(item_id: str) -> WerkzeugResponse:
    """The page's buttons: accept, fix (accept, then the annotator on it) or skip."""
    project = require_project()
    action = request.form.get("action")
    if action == "skip":
        _item(item_id)
        _store().delete(item_id)
        flash("Skipped: the frame left the inbox.", "info")
        return redirect(url_for("inbox.index"))
    if action not in ("accept", "fix"):
        abort(400, description="choose accept, fix or skip")
    meta, kept, dropped = accept_item(project, item_id, None)
    note = f" ({dropped} boxes of classes the project does not have were left out)" if dropped else ""
    flash(f"{meta.file_name} joined “{project.name}” with {kept} boxes{note}.", "info")
    return redirect(url_for("annotate.index", image=meta.id) if action == "fix" else url_for("inbox.index"))
