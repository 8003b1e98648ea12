"""Capture: the live preview, one-click save of the full-resolution frame, drag-and-drop upload."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint, abort, current_app, render_template, request

from device.panel.base import project_for_api, require_project, runtime, state
from device.panel.records import Acquisition
from device.panel.store import PanelError
from device.web_protocol import LatestFrame

bp = Blueprint(
    "capture", __name__, template_folder="templates", static_folder="static",
    static_url_path="/panel/static/capture", url_prefix="/panel",
)


@bp.get("/capture", strict_slashes=False)
def index() -> str:
    project = require_project()
    images = state().projects.list_images(project.slug)
    return render_template("capture/index.html", project=project, images=images, has_runtime=runtime() is not None)


@bp.post("/api/projects/<slug>/capture")
def capture(slug: str) -> tuple[dict[str, Any], int]:
    """Save the newest original frame (full resolution and bit depth), never the preview JPEG."""
    project = project_for_api(slug)
    device = runtime()
    if device is None:
        abort(503, description="no device is running in this process: start the panel with `python -m device run`")
    latest = device.latest()
    if latest is None:
        abort(503, description="the camera has not delivered a frame yet: check the source on the Live page and retry")
    meta = state().projects.add_frame(project.slug, latest.image, acquisition=acquisition(device, latest))
    return {"image": meta.model_dump(mode="json"), "total": len(state().projects.list_images(project.slug))}, 201


def public_source(uri: str) -> str:
    """The source URI without user:password@ (RTSP cameras carry credentials in it)."""
    parts = urlsplit(uri)
    if parts.netloc and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return uri


def acquisition(device: Any, latest: LatestFrame) -> Acquisition:
    """Device name, calibration, source settings and model at the moment of capture."""
    config = current_app.config.get("SCOPEHIVE")
    card = device.model_card()
    return Acquisition(
        device=str(getattr(config, "device_name", "") or "unknown"),
        um_per_pixel=getattr(config, "um_per_pixel", None),
        source=public_source(str(getattr(config, "source", ""))),
        model=card.label if card is not None else None,
        frame_index=latest.index,
        captured_at=datetime.fromtimestamp(latest.captured_at, timezone.utc),
    )


@bp.post("/api/projects/<slug>/images")
def upload(slug: str) -> tuple[dict[str, Any], int]:
    """Many files at once; if any is refused, none is stored and every problem is listed."""
    project = project_for_api(slug)
    files = request.files.getlist("files")
    if not files:
        abort(400, description="no files were sent: drop PNG, JPEG or TIFF images on the page")
    payload = [(f.filename or "unnamed", f.read()) for f in files]
    problems = []
    for name, data in payload:
        try:
            state().projects.check_upload(data, name)
        except PanelError as exc:
            problems.append(str(exc))
    if problems:
        return {"error": "nothing was uploaded: fix these files and try again", "problems": problems}, 400
    metas = [state().projects.add_image(project.slug, data, name, "upload") for name, data in payload]
    return {"images": [m.model_dump(mode="json") for m in metas], "total": len(state().projects.list_images(project.slug))}, 201
