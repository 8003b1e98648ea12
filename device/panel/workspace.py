"""The device's current project: remembered across logins and restarts, seeded with a demo project
on first start, and the source of the class colours the stream draws with.

One panel user per device (a shared lab login), so "current" is stored per device, in the panel's
data folder; a session that chose another project keeps its own choice until it logs out.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from device.panel.records import PanelError, Project
from device.panel.store import ProjectStore

log = logging.getLogger(__name__)
CURRENT_FILE = "current_project"
DEMO_MARKER = "demo_project_created"


def remembered(data_dir: Path) -> str | None:
    """The slug last chosen on this device, or None."""
    path = data_dir / CURRENT_FILE
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8").strip() or None


def remember(data_dir: Path, slug: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / (CURRENT_FILE + ".partial")
    tmp.write_text(slug + "\n", encoding="utf-8")
    tmp.replace(data_dir / CURRENT_FILE)


def forget(data_dir: Path, slug: str) -> None:
    """Called when a project is deleted: it can no longer be the current one."""
    if remembered(data_dir) == slug:
        (data_dir / CURRENT_FILE).unlink(missing_ok=True)


def demo_name(model_name: str) -> str:
    return f"Demo ({model_name} model)"


def ensure_demo_project(projects: ProjectStore, data_dir: Path, runtime: Any) -> Project | None:
    """On the very first start with a model running and no projects: a project with the model's
    classes, so the first screen is not empty. Created once; deleting it is final."""
    marker = data_dir / DEMO_MARKER
    card = runtime.model_card() if runtime is not None else None
    if card is None or marker.exists():
        return None
    try:
        if projects.list_projects():
            return None
        project = projects.create_project(demo_name(card.name), list(card.classes))
    except PanelError as exc:
        log.warning("panel: no demo project: %s", exc)
        return None
    marker.write_text(project.slug + "\n", encoding="utf-8")
    remember(data_dir, project.slug)
    log.info("panel: created the demo project '%s' with the running model's classes %s", project.name, card.classes)
    return project


def push_colours(runtime: Any, project: Project | None) -> None:
    """Tell the stream to draw the project's classes in the project's colours."""
    if runtime is None or project is None or not hasattr(runtime, "set_class_colours"):
        return
    runtime.set_class_colours({c.name: c.color for c in project.classes})


def current_on_device(projects: ProjectStore, data_dir: Path) -> Project | None:
    slug = remembered(data_dir)
    if slug is None:
        return None
    try:
        return projects.project(slug)
    except PanelError:
        return None
