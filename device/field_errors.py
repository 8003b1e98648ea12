"""Pydantic validation errors as sentences a person reads: labels, not internal field names.

`flow_rate_ul_min: Input should be greater than or equal to 1e-06` becomes
`Flow rate (µL/min) must be at least 0.000001`. The label comes from the field's `title` when the
model sets one, else from its name with the unit suffixes this project uses (`_um`, `_ul_min`, ...).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

UNITS = (("_ul_min", "µL/min"), ("_um2", "µm²"), ("_um", "µm"), ("_px", "px"), ("_ms", "ms"), ("_s", "s"),
         ("_mb", "MB"), ("_mm2", "mm²"))
NAMES = {"um_per_pixel": "µm per pixel", "show_ids": "track ids on the stream", "x1": "x1", "y1": "y1",
         "x2": "x2", "y2": "y2"}
PHRASES = (  # pydantic's wording -> ours (first match wins)
    (r"^Input should be greater than or equal to (.+)$", "must be at least {0}"),
    (r"^Input should be greater than (.+)$", "must be more than {0}"),
    (r"^Input should be less than or equal to (.+)$", "must be at most {0}"),
    (r"^Input should be less than (.+)$", "must be less than {0}"),
    (r"^Input should be a (valid )?(number|float|integer).*$", "must be a number"),
    (r"^Input should be finite number$", "must be a finite number"),
    (r"^Input should be a valid boolean.*$", "must be true or false"),
    (r"^Input should be a valid string$", "must be text"),
    (r"^String should have at least 1 character$", "must not be empty"),
    (r"^String should have at most (\d+) characters?$", "must be at most {0} characters long"),
    (r"^Field required$", "is missing"),
    (r"^Extra inputs are not permitted$", "is not a setting here"),
    (r"^Input should be (.+)$", "must be {0}"),
)


def field_label(name: str, model: type[BaseModel] | None = None) -> str:
    """'flow_rate_ul_min' -> 'Flow rate (µL/min)'; a field's own `title` wins."""
    if model is not None and name in model.model_fields and model.model_fields[name].title:
        return str(model.model_fields[name].title)
    if name in NAMES:
        return _capital(NAMES[name])
    unit = ""
    for suffix, shown in UNITS:
        if name.endswith(suffix) and len(name) > len(suffix):
            name, unit = name[: -len(suffix)], f" ({shown})"
            break
    return _capital(name.replace("_", " ").strip() or "value") + unit


def _capital(text: str) -> str:
    """First letter upper case, unless it is a unit (µm stays µm, not Μm)."""
    return text[0].upper() + text[1:] if text[0].isascii() else text


def _number(text: str) -> str:
    """'1e-06' -> '0.000001' (people read decimals); other text as it is."""
    try:
        value = float(text)
    except ValueError:
        return text
    return f"{value:.12f}".rstrip("0").rstrip(".") if 1e-9 <= abs(value) < 1e-3 else text


def phrase(message: str) -> str:
    for pattern, wording in PHRASES:
        found = re.match(pattern, message)
        if found:
            groups = [_number(g) for g in found.groups() if g and g != "valid "]
            return wording.format(*groups)
    return message


def readable(exc: ValidationError, model: type[BaseModel] | None = None, limit: int = 4) -> str:
    """Every error of `exc` (up to `limit`) as 'Label must be ...', joined by '; '."""
    parts = []
    for error in exc.errors()[:limit]:
        parts.append(error_text(error, model))
    return "; ".join(parts)


def error_text(error: Any, model: type[BaseModel] | None = None) -> str:
    loc = [str(p) for p in error.get("loc", ()) if not isinstance(p, int)]
    where = field_label(loc[-1], model if len(loc) == 1 else None) if loc else "The request"
    message = str(error.get("msg", "is not valid"))
    if message.startswith("Value error, "):  # our own validators' sentences: said as they are
        return f"{where}: {message.removeprefix('Value error, ')}"
    return f"{where} {phrase(message)}"
