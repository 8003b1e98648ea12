"""Checking the names people type (projects, classes) before anything is stored.

A name is shown on every page and written into exports (VOC XML, YOLO classes.txt, COCO JSON),
so it must be short, printable and encodable: control characters (NUL breaks VOC export, line
breaks break classes.txt), lone surrogates (cannot be written as UTF-8) and bidirectional
overrides (make one name look like another) are refused. Names stored before these checks
existed are repaired on read instead, so one bad record never takes a page down.
"""

from __future__ import annotations

import unicodedata

from device.panel.records import PanelError
from device.printable import BIDI_CONTROLS as _BIDI_CONTROLS
from device.printable import REFUSED_CATEGORIES as _REFUSED_CATEGORIES
from device.printable import unprintable as _bad_char

PROJECT_NAME_MAX = 100
CLASS_NAME_MAX = 64


def clean_name(value: object, what: str, limit: int, forbidden: str = "") -> str:
    """`value` stripped, or PanelError saying what is wrong (too long, empty, odd characters)."""
    if not isinstance(value, str):
        raise PanelError(f"the {what} must be text")
    name = value.strip()
    if not name:
        raise PanelError(f"give the {what} a name")
    if len(name) > limit:
        raise PanelError(f"the {what} '{name[:40]}…' has {len(name)} characters: at most {limit} are allowed")
    bad = _bad_char(name)
    if bad is not None:
        raise PanelError(f"the {what} contains the control character U+{ord(bad):04X}: use printable characters only")
    for ch in forbidden:
        if ch in name:
            raise PanelError(f"the {what} '{name[:70]}' contains '{ch}', which is not allowed there")
    return name


def project_name(value: object) -> str:
    return clean_name(value, "project name", PROJECT_NAME_MAX)


def class_name(value: object) -> str:
    """Commas separate classes in the create form, so they cannot be part of a name."""
    return clean_name(value, "class name", CLASS_NAME_MAX, forbidden=",")


def repair_name(value: object, limit: int, fallback: str, forbidden: str = "") -> str:
    """A displayable version of a name stored before validation existed (never raises)."""
    text = value if isinstance(value, str) else fallback
    text = "".join("?" if unicodedata.category(ch) in _REFUSED_CATEGORIES or ch in _BIDI_CONTROLS else ch for ch in text)
    for ch in forbidden:
        text = text.replace(ch, " ")
    text = text.strip()
    return (text[: limit - 1] + "…" if len(text) > limit else text) or fallback


def repair_project(raw: object) -> object:
    """A stored project dict with its names made displayable (before validation of the record)."""
    if not isinstance(raw, dict):
        return raw
    fixed = dict(raw, name=repair_name(raw.get("name"), PROJECT_NAME_MAX, str(raw.get("slug") or "project")))
    if isinstance(raw.get("classes"), list):
        fixed["classes"] = [
            dict(c, name=repair_name(c.get("name"), CLASS_NAME_MAX, f"class {i + 1}", ",")) if isinstance(c, dict) else c
            for i, c in enumerate(raw["classes"])
        ]
    return fixed
