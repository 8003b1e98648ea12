"""Projects: create, rename, list, switch, delete; classes with colours (add, edit, remove)."""

from __future__ import annotations

from flask import Blueprint, flash, render_template, request, session
from werkzeug.wrappers import Response

import device.panel.workspace as workspace
from device.panel.base import back, choose_project, current_project, runtime, state
from device.panel.classes import ClassEdit
from device.panel.store import PanelError, Project
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
    usage = {p.slug: state().projects.class_usage(p.slug) for p in projects}
    return render_template("projects/index.html", projects=projects, contents=what, warnings=warnings, usage=usage)


def _refused(exc: PanelError) -> tuple[str, int]:
    """A refused form: the projects page with the reason, as a 400 (nothing was changed)."""
    flash(str(exc), "error")
    return index(), 400


@bp.post("/")
def create() -> Response | tuple[str, int]:
    classes = split_classes(request.form.get("classes", ""))
    try:
        project = state().projects.create_project(request.form.get("name", ""), classes)
    except PanelError as exc:
        return _refused(exc)
    choose_project(project)
    flash(f"Project '{project.name}' created and chosen.", "ok")
    return back("projects.index")


@bp.post("/<slug>/switch")
def switch(slug: str) -> Response | tuple[str, int]:
    try:
        project = state().projects.project(slug)
    except PanelError as exc:
        return _refused(exc)
    choose_project(project)
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


@bp.post("/<slug>/delete")
def delete(slug: str) -> Response | tuple[str, int]:
    try:
        project = state().projects.project(slug)
    except PanelError as exc:
        return _refused(exc)
    what = contents(project)
    state().projects.delete_project(project.slug)
    workspace.forget(state().data_dir, project.slug)
    if session.get("project") == project.slug:
        session.pop("project")
    flash(f"Deleted project '{project.name}' with {plural(what['images'], 'image')} and {plural(what['models'], 'model bundle')}.", "ok")
    return back("projects.index")


@bp.post("/<slug>/classes")
def classes(slug: str) -> Response | tuple[str, int]:
    """The form lists every class (id, name, colour) in order; a blanked name removes that class;
    the 'add classes' box takes one name or a comma list."""
    try:
        edits = _class_edits() + [ClassEdit(None, name) for name in split_classes(request.form.get("new_class", ""))]
        project = state().projects.set_classes(slug, edits)
    except PanelError as exc:
        return _refused(exc)
    _recolour_stream(project)
    flash(f"Classes of '{project.name}' saved: {', '.join(project.class_names) or 'none'}.", "ok")
    return back("projects.index")


@bp.post("/<slug>/classes/<int:class_id>/remove")
def remove_class(slug: str, class_id: int) -> Response | tuple[str, int]:
    """Remove one class; boxes that use it go with it (`boxes=delete`) or move to another class
    (`boxes=<class id>`), as the confirmation said. Without a choice a class in use is refused."""
    choice = request.form.get("boxes", "")
    try:
        merge_into = int(choice) if choice.isdigit() else None
        before = state().projects.project(slug)
        spec = before.class_by_id(class_id)
        used = state().projects.class_usage(slug)[class_id]
        project = state().projects.remove_class(slug, class_id, merge_into, delete_boxes=choice == "delete")
    except PanelError as exc:
        return _refused(exc)
    name = spec.name if spec is not None else str(class_id)
    if used and merge_into is not None:
        target = before.class_by_id(merge_into)
        flash(f"Removed class '{name}'; its {plural(used, 'box', 'boxes')} are now '{target.name if target else merge_into}'.", "ok")
    else:
        flash(f"Removed class '{name}'" + (f" and its {plural(used, 'box', 'boxes')}." if used else "."), "ok")
    _recolour_stream(project)
    return back("projects.index")


def _recolour_stream(project: Project) -> None:
    current = current_project()
    if current is not None and current.slug == project.slug:
        workspace.push_colours(runtime(), project)


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
