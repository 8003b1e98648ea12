"""Experiments page and HTTP API (blueprint `experiments`): start/stop, calibration profiles,
summaries and downloads. Login and CSRF as for every panel blueprint; bad input is a 400 with
a message and changes nothing (device/experiments/calibration.ExperimentError). JSON bodies are
validated strictly: "0.5" is not a number and "yes" is not a boolean here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, jsonify, render_template, request
from pydantic import ValidationError

from device import __version__
from device.experiments.calibration import CalibrationProfile, ExperimentError, MicrometerLine
from device.experiments.recorder import ExperimentRecorder
from device.experiments.report import frames_csv, html_report, objects_csv, objects_geojson
from device.experiments.store import Experiment, ExperimentRequest, invalid
from device.experiments.summary import summarise
from device.inbox.qc import status_of
from device.panel.base import runtime, state
from device.panel.imaging import jpeg, to_display
from device.panel.inbox.spotchecks import project_qc
from device.panel.jsonbody import json_object
from device.panel.workspace import current_on_device
from device.tracking.experiment import experiment_tracking

bp = Blueprint("experiments", __name__, template_folder="templates", static_folder="static",
               static_url_path="/panel/static/experiments", url_prefix="/panel")


def recorder() -> ExperimentRecorder:
    device = runtime()
    found = device.experiments() if device is not None else None
    if found is None:
        abort(503, description="no device with an experiment store runs in this process")
    return found  # type: ignore[no-any-return]


def _json_body() -> dict[str, Any]:
    return json_object("send a JSON object (Content-Type: application/json)")


@bp.app_errorhandler(ExperimentError)
def _refused(exc: ExperimentError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


def _tracking(path: Path, experiment: str) -> dict[str, Any]:
    device = runtime()
    if device is None:
        return experiment_tracking(path, experiment)
    return experiment_tracking(path, experiment, device.track_log(), device.tracking_settings())


def provenance() -> dict[str, Any]:
    """What produced the numbers: model (name, version, sha256, validation metrics, threshold),
    gates, source and software version, fixed when the experiment starts."""
    device = runtime()
    return device.provenance() if device is not None else {"software": __version__, "source": "", "quality": {}}


@bp.get("/experiments")
def index() -> str:
    return render_template("experiments/index.html", has_runtime=runtime() is not None)


@bp.get("/api/experiments")
def overview() -> dict[str, Any]:
    rec = recorder()
    active = rec.active
    device = runtime()
    drift = device.live_stats().get("drift") if device is not None else None
    return {"active": active.public() if active else None,
            "experiments": [e.public() for e in rec.store.recent()],
            "profiles": [p.model_dump() for p in rec.store.profiles()],
            "drift": drift or {"alarm": False, "message": ""}}


@bp.post("/api/experiments/start")
def start() -> tuple[dict[str, Any], int]:
    try:
        wanted = ExperimentRequest.model_validate(_json_body(), strict=True)
    except ValidationError as exc:
        raise invalid(exc) from exc
    return recorder().start(wanted, provenance()).public(), 201


@bp.post("/api/experiments/stop")
def stop() -> dict[str, Any]:
    return recorder().stop().public()


def _experiment(experiment_id: str) -> Experiment:
    try:
        return recorder().store.get(experiment_id)
    except KeyError:
        abort(404, description=f"no experiment '{experiment_id}' on this device")


def _summary(experiment: Experiment) -> dict[str, Any]:
    store = recorder().store
    recorder().flush()  # rows of the last second (or of frames in flight at the stop) first
    summary = summarise(experiment, store.frames(experiment.id), store.objects(experiment.id))
    return {**summary, "tracking": _tracking(store.path, experiment.id), "qc": _qc(experiment)}


def _qc(experiment: Experiment) -> dict[str, Any] | None:
    """Count QC of the experiment's model from the device's project's spot checks (None: no model ran)."""
    model = experiment.provenance.get("model") or {}
    if not model.get("name"):
        return None
    label = f"{model['name']}:{model.get('version', '')}"
    panel = state()
    project = current_on_device(panel.projects, panel.data_dir)
    table = project_qc(panel.projects, project) if project is not None else {}
    return {"model": label, "rows": [r.public() for r in table.get(label, [])], "status": status_of(label, table),
            "project": project.name if project is not None else None}


@bp.get("/api/experiments/<experiment_id>/summary")
def summary(experiment_id: str) -> dict[str, Any]:
    return _summary(_experiment(experiment_id))


def _download(body: Any, mimetype: str, name: str) -> Response:
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/api/experiments/<experiment_id>/frames.csv")
def frames(experiment_id: str) -> Response:
    experiment = _experiment(experiment_id)
    recorder().flush()  # rows of the last second (or of frames in flight at the stop) first
    rows = recorder().store.frames(experiment.id)
    classes = list(dict.fromkeys(c for f in rows if f["counts"] for c in f["counts"]))
    return _download(frames_csv(rows, classes), "text/csv", f"{experiment.id}-frames.csv")


@bp.get("/api/experiments/<experiment_id>/objects.csv")
def objects(experiment_id: str) -> Response:
    experiment = _experiment(experiment_id)
    recorder().flush()  # rows of the last second (or of frames in flight at the stop) first
    return _download(objects_csv(recorder().store.objects(experiment.id)), "text/csv", f"{experiment.id}-objects.csv")


@bp.get("/api/experiments/<experiment_id>/objects.geojson")
def objects_qupath(experiment_id: str) -> Response:
    """The objects as QuPath detections; `?file=NAME` keeps one image file's (QuPath imports per image)."""
    experiment = _experiment(experiment_id)
    recorder().flush()
    store = recorder().store
    classes = list(dict.fromkeys(c for f in store.frames(experiment.id) if f["counts"] for c in f["counts"]))
    body = objects_geojson(store.objects(experiment.id), classes, request.args.get("file"))
    return _download(body, "application/geo+json", f"{experiment.id}-objects.geojson")


def _class_colours() -> dict[str, str]:
    """The colours the stream draws the classes in: the device's current project's (none: the default palette)."""
    panel = state()
    project = current_on_device(panel.projects, panel.data_dir)
    return {c.name: c.color for c in project.classes} if project is not None else {}


@bp.get("/api/experiments/<experiment_id>/report.html")
def report(experiment_id: str) -> Response:
    experiment = _experiment(experiment_id)
    html = html_report(experiment, _summary(experiment), _class_colours())
    if request.args.get("view"):
        return Response(html, mimetype="text/html")
    return _download(html, "text/html", f"{experiment.id}-report.html")


@bp.get("/api/calibration/profiles")
def profiles() -> dict[str, Any]:
    return {"profiles": [p.model_dump() for p in recorder().store.profiles()]}


@bp.post("/api/calibration/profiles")
def save_profile() -> tuple[dict[str, Any], int]:
    """A profile from a typed µm/px, or from `line` (x1, y1, x2, y2 in frame pixels, length_um)."""
    body = dict(_json_body())
    try:
        if "line" in body:
            line = body.pop("line")
            body["um_per_pixel"] = MicrometerLine.model_validate(line, strict=True).um_per_pixel()
        profile = CalibrationProfile.model_validate(body, strict=True)
    except ValidationError as exc:
        raise invalid(exc) from exc
    return recorder().store.save_profile(profile).model_dump(), 201


@bp.get("/api/calibration/frame.jpg")
def calibration_frame() -> Response:
    """The newest frame without overlays, at full resolution, to draw the micrometer line on."""
    latest = runtime().latest() if runtime() is not None else None
    if latest is None:
        abort(503, description="no frame yet: the camera has not delivered one")
    return Response(jpeg(to_display(latest.image), 92), mimetype="image/jpeg", headers={"Cache-Control": "no-store"})
