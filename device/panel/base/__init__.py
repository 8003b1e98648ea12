"""Shared page furniture of the panel: base template, CSS, small JS helpers, request helpers."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, request, session, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

import device.panel.workspace as workspace
from device.panel.security import too_large_message
from device.panel.store import PanelError, Project
from device.panel.text import plural
from device.storage import StorageError

bp = Blueprint("panel", __name__, template_folder="templates", static_folder="static", static_url_path="/panel/static")


def state() -> Any:
    """The PanelState of the running app (see device.panel.init_app)."""
    return current_app.extensions["scopehive.panel"]


def runtime() -> Any:
    """The running device (device.web_protocol.DeviceRuntime), or None when the panel runs without one."""
    return current_app.extensions.get("scopehive.runtime")


def current_project() -> Project | None:
    """This session's project, else the one last chosen on this device (kept across logins)."""
    slug = session.get("project") or workspace.remembered(state().data_dir)
    if not slug:
        return None
    try:
        project: Project = state().projects.project(slug)
        return project
    except PanelError:
        session.pop("project", None)
        return None


def choose_project(project: Project) -> None:
    """Make `project` current for this session and, remembered, for the next login on this device;
    the stream then draws its classes in the project's colours."""
    session["project"] = project.slug
    workspace.remember(state().data_dir, project.slug)
    workspace.push_colours(runtime(), project)


def require_project() -> Project:
    """The chosen project; pages without one send the user to the Projects page."""
    project = current_project()
    if project is None:
        flash("Choose or create a project first.", "info")
        abort(redirect(url_for("projects.index")))
    return project


def project_for_api(slug: str) -> Project:
    try:
        project: Project = state().projects.project(slug)
        return project
    except PanelError as exc:
        abort(404, description=str(exc))


def back(endpoint: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, **values))


bp.add_app_template_filter(plural, "plural")


@bp.app_context_processor
def _globals() -> dict[str, Any]:
    return {"current_project": current_project(), "logged_in": bool(session.get("user"))}


@bp.app_errorhandler(StorageError)
def _storage_error(exc: StorageError) -> Any:
    """The object store failed (down, full, refused): say so instead of a bare 500."""
    if request.path.startswith("/panel/api/"):
        return jsonify(error=f"storage problem, nothing was changed: {exc}"), 503
    return f"Storage problem: {exc}", 503, {"Content-Type": "text/plain; charset=utf-8"}


@bp.app_errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    """Panel API calls get JSON errors the page can show; other pages keep Flask's default."""
    if exc.code == 413:
        exc.description = too_large_message(state().settings.max_upload_mb)
    if request.path.startswith("/panel/api/") or exc.code == 413:
        return jsonify(error=exc.description), exc.code
    return exc
