"""A project's classes as people edit them: stable ids, renames, reordering, guarded removal.

Boxes refer to a class by its stable id (ClassSpec.id), never by its position, so renaming,
recolouring or reordering classes never changes what a box is. The order of the list is the
order exports and models use (position = exported class index). Removing a class that boxes
still use is refused with the number of boxes, unless the caller explicitly asks to merge those
boxes into another class or to delete them (see ProjectStore.remove_class).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import device.panel.names as names
from device.panel.records import PALETTE, ClassSpec, PanelError, Project


@dataclass(frozen=True)
class ClassEdit:
    """One row of the classes form: id None = a new class."""

    id: int | None
    name: str
    color: str = ""


def new_project_classes(class_names: list[str]) -> list[ClassSpec]:
    cleaned = [names.class_name(n) for n in class_names if n.strip()]
    _unique(cleaned)
    return [ClassSpec(id=i, name=n, color=PALETTE[i % len(PALETTE)]) for i, n in enumerate(cleaned)]


def apply_edits(project: Project, edits: list[ClassEdit]) -> tuple[Project, list[ClassSpec]]:
    """The project with `edits` applied (in their order) and the classes the edits leave out."""
    known = {c.id: c for c in project.classes}
    next_id = project.next_class_id
    result: list[ClassSpec] = []
    for edit in edits:
        name = names.class_name(edit.name)
        if edit.id is None:
            color = edit.color or PALETTE[next_id % len(PALETTE)]
            result.append(_spec(next_id, name, color))
            next_id += 1
            continue
        if edit.id not in known:
            raise PanelError(f"class id {edit.id} is not in project '{project.name}' (changed elsewhere?): reload the page")
        result.append(_spec(edit.id, name, edit.color or known[edit.id].color))
    _unique([c.name for c in result])
    if len({c.id for c in result}) != len(result):
        raise PanelError("a class appears twice in the list: reload the page")
    kept = {c.id for c in result}
    removed = [c for c in project.classes if c.id not in kept]
    return project.model_copy(update={"classes": result, "next_class_id": next_id}), removed


def refuse_if_used(removed: list[ClassSpec], usage: Counter[int]) -> None:
    """PanelError naming the first removed class that boxes still use, with how many."""
    for spec in removed:
        if usage[spec.id]:
            raise PanelError(
                f"class '{spec.name}' is still used by {usage[spec.id]} boxes: relabel or delete those boxes, "
                "or remove the class with an explicit merge into another class (or deletion of its boxes)"
            )


def _spec(class_id: int, name: str, color: str) -> ClassSpec:
    try:
        return ClassSpec(id=class_id, name=name, color=color)
    except ValueError:
        raise PanelError(f"colour '{color[:20]}' of class '{name}' is not a #rrggbb colour") from None


def _unique(class_names: list[str]) -> None:
    if len(set(class_names)) != len(class_names):
        raise PanelError("class names must be unique")
