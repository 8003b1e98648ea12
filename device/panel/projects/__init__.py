"""Projects: create, rename, list, switch; classes with colours."""

from __future__ import annotations

from flask import Blueprint, flash, render_template, request, session
from werkzeug.wrappers import Response

from device.panel.base import back, state
from device.panel.classes import ClassEdit
from device.panel.store import PanelError

bp = Blueprint("projects", __name__, template_folder="templates", url_prefix="/panel/projects")


@bp.get("/")
def index() -> str:
    projects = state().projects.list_projects()
    progress = {p.slug: state().projects.progress(p.slug) for p in projects}
    return render_template("projects/index.html", projects=projects, progress=progress)


def _refused(exc: PanelError) -> tuple[str, int]:
    """A refused form: the projects page with the reason, as a 400 (nothing was changed)."""
    flash(str(exc), "error")
    return index(), 400


@bp.post("/")
def create() -> Response | tuple[str, int]:
    classes = request.form.get("classes", "").split(",")
    try:
        project = state().projects.create_project(request.form.get("name", ""), classes)
    except PanelError as exc:
        return _refused(exc)
    session["project"] = project.slug
    flash(f"Project '{project.name}' created and chosen.", "ok")
    return back("projects.index")


@bp.post("/<slug>/switch")
def switch(slug: str) -> Response | tuple[str, int]:
    try:
        project = state().projects.project(slug)
    except PanelError as exc:
        return _refused(exc)
    session["project"] = project.slug
    flash(f"Now working on '{project.name}'.", "ok")
    return back("projects.index")


@bp.post("/<slug>/rename")
def rename(slug: str) -> Response | tuple[str, int]:
    try:
        project = state().projects.rename_project(slug, request.form.get("name", ""))
    except PanelError as exc:
        return _refused(exc)
    flash(f"Renamed to '{project.name}'.", "ok")
    return back("projects.index")


@bp.post("/<slug>/classes")
def classes(slug: str) -> Response | tuple[str, int]:
    """The form lists every class (id, name, colour) in order; a blanked name removes that class."""
    try:
        edits = _class_edits()
        new = request.form.get("new_class", "")
        if new.strip():
            edits.append(ClassEdit(None, new))
        project = state().projects.set_classes(slug, edits)
    except PanelError as exc:
        return _refused(exc)
    flash(f"Classes of '{project.name}' saved: {', '.join(project.class_names) or 'none'}.", "ok")
    return back("projects.index")


def _class_edits() -> list[ClassEdit]:
    ids = request.form.getlist("class_id")
    names = request.form.getlist("class_name")
    colors = request.form.getlist("class_color")
    if not (len(ids) == len(names) == len(colors)):
        raise PanelError("the classes form is incomplete: reload the page and try again")
    try:
        return [ClassEdit(int(i), n, c) for i, n, c in zip(ids, names, colors, strict=True) if n.strip()]
    except ValueError:
        raise PanelError("the classes form is damaged (class id is not a number): reload the page") from None
