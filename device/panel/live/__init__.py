"""Live page (blueprint panel_live; the device's own `live` blueprint serves the stream): the annotated stream, live statistics and small charts of recent history."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request

from device.panel.base import runtime

bp = Blueprint(
    "panel_live", __name__, template_folder="templates", static_folder="static",
    static_url_path="/panel/static/live", url_prefix="/panel",
)


@bp.get("/live")
def index() -> str:
    return render_template("live/index.html", has_runtime=runtime() is not None)


@bp.get("/api/live/stats")
def stats() -> dict[str, Any]:
    device = runtime()
    if device is None:
        abort(503, description="no device runs in this process")
    return dict(device.live_stats())


@bp.get("/api/live/history")
def history() -> dict[str, Any]:
    """Recent per-frame statistics from the device's local store, for the charts."""
    device = runtime()
    if device is None:
        abort(503, description="no device runs in this process")
    seconds = min(max(request.args.get("seconds", 300.0, type=float), 10.0), 24 * 3600.0)
    return {"seconds": seconds, "points": device.history(seconds)}


@bp.get("/api/live/sizes")
def sizes() -> dict[str, Any]:
    """Histogram of the sizes of recently detected objects (µm when calibrated), per class."""
    device = runtime()
    recorder = device.experiments() if device is not None else None
    if recorder is None:
        abort(503, description="no device runs in this process")
    return dict(recorder.live_histogram())
