"""One colour per class, the same on every surface: stream overlay, snapshot, panel, reports, Grafana.

A project stores each class's colour (#rrggbb); new classes get `default_colour(index)`. Anything
drawing a class without a project at hand (the stream before a project is chosen, the trainer's
report, the dashboards) uses the same default, so class 0 looks the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# Chosen to stay distinguishable on grey microscope backgrounds and on white pages.
PALETTE: tuple[str, ...] = (
    "#3cc83c", "#ffa500", "#c850ff", "#00c8ff", "#ff3c3c",
    "#3cffc8", "#3c78ff", "#ff3c96", "#e6e600", "#b4b4b4",
)


def default_colour(index: int) -> str:
    """The colour a class gets when nobody chose one: by its position in the class list."""
    return PALETTE[index % len(PALETTE)]


def hex_to_bgr(colour: str) -> tuple[int, int, int]:
    """'#rrggbb' -> OpenCV's (b, g, r)."""
    value = colour.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return b, g, r


def class_colours(classes: Sequence[str], chosen: Mapping[str, str] | None = None) -> list[str]:
    """The colour of each class: the project's choice by name, else the default for its index."""
    chosen = chosen or {}
    return [chosen.get(name) or default_colour(i) for i, name in enumerate(classes)]
