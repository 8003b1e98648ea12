"""Tracking controls of the live page (blueprint panel_tracking): the counting line drawn on the
stream, flow rate / depth for concentrations, the track-id toggle, and resetting the counts.

Every change goes through the running device's TrackingStage, which validates first: a bad line
or a negative flow rate is a 400 with the reason, and nothing changes. Flow rate and depth may
come as typed text: "1,5" (a decimal comma) is 1.5; text that is no number is refused by name.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort
from pydantic import ValidationError

from device.field_errors import field_label, readable
from device.panel.base import runtime
from device.panel.jsonbody import json_object
from device.tracking.crossing import LineError
from device.tracking.settings import TrackingSettings
from device.tracking.stage import TrackingStage

bp = Blueprint("panel_tracking", __name__, template_folder="templates", static_folder="static",
               static_url_path="/panel/static/tracking",
               url_prefix="/panel/api/tracking")


def _stage() -> TrackingStage:
    device = runtime()
    if device is None:
        abort(503, description="no device runs in this process")
    stage = device.tracking()
    if stage is None:
        abort(409, description="tracking is switched off on this device (tracking.enabled)")
    return stage  # type: ignore[no-any-return]


def _body() -> dict[str, Any]:
    return json_object("send a JSON object")


@bp.get("")
def state() -> dict[str, Any]:
    return _stage().live()


@bp.post("/line")
def line() -> dict[str, Any]:
    """{"line": [x1, y1, x2, y2]} in frame pixels, or {"line": null} to remove it."""
    body = _body()
    if "line" not in body:
        abort(400, description='send {"line": [x1, y1, x2, y2]} in frame pixels, or {"line": null}')
    try:
        return {"line": _stage().set_line(body["line"])}
    except LineError as exc:
        abort(400, description=f"{exc}; the line was not changed")


NUMBERS = ("flow_rate_ul_min", "depth_um")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def typed_number(name: str, value: object) -> object:
    """A number as a person types it: '2.5', '1,5' (decimal comma), ' 20 ', '' (none). Anything
    else that is text is refused here with the box's name; numbers and null pass to the stage."""
    if not isinstance(value, str):
        return value
    text = value.strip().replace("\u00a0", "").replace(" ", "")
    if not text:
        return None
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    if not _PLAIN_NUMBER.fullmatch(text):  # float() alone takes '٢٫٥', 'nan' and 'infinity'
        abort(400, description=f"{field_label(name)}: '{value.strip()[:20]}' is not a number (write e.g. 1.5 or 1,5); nothing was changed")
    return float(text)


@bp.post("/settings")
def settings() -> dict[str, Any]:
    """{"flow_rate_ul_min": 2.5, "depth_um": 20, "show_ids": false} (null clears a value)."""
    body = _body()
    body = {k: typed_number(k, v) if k in NUMBERS else v for k, v in body.items()}
    try:
        updated = _stage().configure(body)
    except ValidationError as exc:
        abort(400, description=f"{readable(exc, TrackingSettings)}; nothing was changed")
    except ValueError as exc:
        abort(400, description=f"{exc}; nothing was changed")
    return {"flow_rate_ul_min": updated.flow_rate_ul_min, "depth_um": updated.depth_um, "show_ids": updated.show_ids}


@bp.post("/reset")
def reset() -> dict[str, Any]:
    _stage().reset_counts()
    return _stage().live()
