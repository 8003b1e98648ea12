"""Projects: create, rename, list, switch; classes with colours."""

from __future__ import annotations

from flask import Blueprint, flash, render_template, request, session
from werkzeug.wrappers import Response

from device.panel.base import back, state
from device.panel.store import ClassSpec, PanelError

bp = Blueprint("projects", __name__, template_folder="templates", url_prefix="/panel/projects")


@bp.get("/")
def index() -> str:
    projects = state().projects.list_projects()
    progress = {p.slug: state().projects.progress(p.slug) for p in projects}
    return render_template("projects/index.html", projects=projects, progress=progress)


@bp.post("/")
def create() -> Response:
    classes = request.form.get("classes", "").split(",")
    try:
        project = state().projects.create_project(request.form.get("name", ""), classes)
    except PanelError as exc:
        flash(str(exc), "error")
        return back("projects.index")
    session["project"] = project.slug
    flash(f"Project '{project.name}' created and chosen.", "ok")
    return back("projects.index")


@bp.post("/<slug>/switch")
def switch(slug: str) -> Response:
    try:
        project = state().projects.project(slug)
    except PanelError as exc:
        flash(str(exc), "error")
        return back("projects.index")
    session["project"] = project.slug
    flash(f"Now working on '{project.name}'.", "ok")
    return back("projects.index")


@bp.post("/<slug>/rename")
def rename(slug: str) -> Response:
    try:
        project = state().projects.rename_project(slug, request.form.get("name", ""))
        flash(f"Renamed to '{project.name}'.", "ok")
    except PanelError as exc:
        flash(str(exc), "error")
    return back("projects.index")


@bp.post("/<slug>/classes")
def classes(slug: str) -> Response:
    names = request.form.getlist("class_name")
    colors = request.form.getlist("class_color")
    new = request.form.get("new_class", "").strip()
    specs = [ClassSpec(name=n.strip(), color=c) for n, c in zip(names, colors, strict=False) if n.strip()]
    try:
        project = state().projects.set_classes(slug, specs)
        if new:
            project = state().projects.add_classes(slug, [new])
        flash(f"Classes of '{project.name}' saved: {', '.join(project.class_names) or 'none'}.", "ok")
    except (PanelError, ValueError) as exc:
        flash(str(exc), "error")
    return back("projects.index")
