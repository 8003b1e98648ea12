"""Tracking controls of the live page (blueprint panel_tracking): the counting line drawn on the
stream, flow rate / depth for concentrations, the track-id toggle, and resetting the counts.

Every change goes through the running device's TrackingStage, which validates first: a bad line
or a negative flow rate is a 400 with the reason, and nothing changes.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort
from pydantic import ValidationError

from device.panel.base import runtime
from device.panel.jsonbody import json_object
from device.tracking.crossing import LineError
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


@bp.post("/settings")
def settings() -> dict[str, Any]:
    """{"flow_rate_ul_min": 2.5, "depth_um": 20, "show_ids": false} (null clears a value)."""
    try:
        updated = _stage().configure(_body())
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        abort(400, description=f"{problems}; nothing was changed")
    except ValueError as exc:
        abort(400, description=f"{exc}; nothing was changed")
    return {"flow_rate_ul_min": updated.flow_rate_ul_min, "depth_um": updated.depth_um, "show_ids": updated.show_ids}


@bp.post("/reset")
def reset() -> dict[str, Any]:
    _stage().reset_counts()
    return _stage().live()
