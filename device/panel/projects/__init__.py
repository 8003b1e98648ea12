"""Projects: create, rename, list, switch, delete; classes with colours."""

from __future__ import annotations

from flask import Blueprint, flash, render_template, request, session
from werkzeug.wrappers import Response

from device.panel import workspace
from device.panel.base import back, choose_project, current_project, runtime, state
from device.panel.store import ClassSpec, PanelError, Project
from device.panel.text import plural

bp = Blueprint("projects", __name__, template_folder="templates", url_prefix="/panel/projects")


def split_classes(text: str) -> list[str]:
    """'cell, crystal,, debris' -> ['cell', 'crystal', 'debris']: both class boxes take a comma list."""
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def contents(project: Project) -> dict[str, int]:
    """What goes with a project when it is deleted: shown in the confirmation."""
    done, total = state().projects.progress(project.slug)
    return {"images": total, "annotated": done, "models": len(state().models.list(project))}


def delete_warning(project: Project, what: dict[str, int]) -> str:
    return (
        f"Delete project '{project.name}' with {plural(what['images'], 'image')} "
        f"({what['annotated']} annotated) and {plural(what['models'], 'model bundle')}? This cannot be undone: "
        "export a dataset package first to keep the annotations."
    )


@bp.get("/")
def index() -> str:
    projects = state().projects.list_projects()
    what = {p.slug: contents(p) for p in projects}
    warnings = {p.slug: delete_warning(p, what[p.slug]) for p in projects}
    return render_template("projects/index.html", projects=projects, contents=what, warnings=warnings)


@bp.post("/")
def create() -> Response:
    classes = split_classes(request.form.get("classes", ""))
    try:
        project = state().projects.create_project(request.form.get("name", ""), classes)
    except PanelError as exc:
        flash(str(exc), "error")
        return back("projects.index")
    choose_project(project)
    flash(f"Project '{project.name}' created and chosen.", "ok")
    return back("projects.index")


@bp.post("/<slug>/switch")
def switch(slug: str) -> Response:
    try:
        project = state().projects.project(slug)
    except PanelError as exc:
        flash(str(exc), "error")
        return back("projects.index")
    choose_project(project)
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


@bp.post("/<slug>/delete")
def delete(slug: str) -> Response:
    try:
        project = state().projects.project(slug)
    except PanelError as exc:
        flash(str(exc), "error")
        return back("projects.index")
    what = contents(project)
    state().projects.delete_project(project.slug)
    workspace.forget(state().data_dir, project.slug)
    if session.get("project") == project.slug:
        session.pop("project")
    flash(f"Deleted project '{project.name}' with {plural(what['images'], 'image')} and {plural(what['models'], 'model bundle')}.", "ok")
    return back("projects.index")


@bp.post("/<slug>/classes")
def classes(slug: str) -> Response:
    names = request.form.getlist("class_name")
    colors = request.form.getlist("class_color")
    new = split_classes(request.form.get("new_class", ""))
    specs = [ClassSpec(name=n.strip(), color=c) for n, c in zip(names, colors, strict=False) if n.strip()]
    try:
        project = state().projects.set_classes(slug, specs)
        if new:
            project = state().projects.add_classes(slug, new)
        flash(f"Classes of '{project.name}' saved: {', '.join(project.class_names) or 'none'}.", "ok")
    except (PanelError, ValueError) as exc:
        flash(str(exc), "error")
        return back("projects.index")
    current = current_project()
    if current is not None and current.slug == project.slug:
        workspace.push_colours(runtime(), project)
    return back("projects.index")
