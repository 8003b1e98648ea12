"""The OpenAPI 3.1 document of the device's JSON API (panel and device web app), served at /openapi.json.

Built with apispec from the running app itself: the paths, methods and path parameters come from
the Flask url_map, the bodies and answers from the declarations below (pydantic models where the
view validates with one). Declarations are keyed by endpoint, so a JSON view added without one is
caught by tests/device/test_openapi.py, and so is a declaration whose route is gone.
Why apispec and not spectree / flask-openapi3: those own the views (decorators that parse and
validate), which would rewrite every blueprint; apispec only assembles the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from flask.wrappers import Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from device import __version__
from device.experiments.calibration import CalibrationProfile, MicrometerLine
from device.experiments.store import ExperimentRequest
from device.panel.records import AnnotationDoc, Box, ImageMeta

bp = Blueprint("openapi", __name__)
Schema = dict[str, Any] | type[BaseModel]
REF = "#/components/schemas/{model}"
OBJECT: dict[str, Any] = {"type": "object"}
ERROR: dict[str, Any] = {"$ref": REF.format(model="Error")}
PARAM = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
REASONS = {
    400: "Refused: the message says what to send; nothing changed", 401: "Not logged in (or the stream token is wrong)",
    404: "No such project, image, experiment or job", 409: "Conflicts with the device's state", 413: "Body too large",
    502: "The trainer answered, but not as a trainer", 503: "Not available on this device now (no model, no frame, unhealthy)",
}


class AnnotationBody(BaseModel):
    """PUT body of an annotation: the revision the client edited (a stale one is a 409)."""

    model_config = ConfigDict(extra="allow")
    revision: int = Field(ge=0, description="The revision the client edited (strict: a whole number)")
    boxes: list[Box] = Field(default_factory=list, description="All boxes of the image, in original pixels")
    negative: bool = Field(False, description="The image has no objects")


class ProfileBody(BaseModel):
    """A calibration profile from a typed µm per pixel, or from a line drawn over a micrometer."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=60)
    um_per_pixel: float | None = Field(None, gt=0, le=1000, description="Typed; or give `line`")
    line: MicrometerLine | None = Field(None, description="Drawn over a stage micrometer; gives um_per_pixel")
    objective: str = ""
    camera: str = ""
    notes: str = ""


class TrackingLine(BaseModel):
    line: list[float] | None = Field(description="[x1, y1, x2, y2] in frame pixels, or null to remove it",
                                     min_length=4, max_length=4)


class TrackingChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flow_rate_ul_min: float | None = Field(None, description="Flow rate through the field, µL/min (null clears)")
    depth_um: float | None = Field(None, description="Depth of the chamber, µm (null clears)")
    show_ids: bool = Field(True, description="Draw track ids on the stream")


MODELS: tuple[type[BaseModel], ...] = (AnnotationDoc, AnnotationBody, ImageMeta, CalibrationProfile, ProfileBody,
                                       ExperimentRequest, TrackingLine, TrackingChanges)


@dataclass(frozen=True)
class Op:
    """One JSON operation: what it does, what it takes, what it answers (success and refusals)."""

    summary: str
    answer: Schema = field(default_factory=lambda: dict(OBJECT))
    status: int = 200
    body: Schema | None = None
    upload: bool = False  # multipart `files` instead of a JSON body
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    refusals: tuple[int, ...] = (400, 401, 404)
    public: bool = False  # no login needed
    media: str = "application/json"  # of the success answer (refusals are always application/json)


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": REF.format(model=model.__name__)}


def _obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


EXPERIMENT = _obj(id={"type": "string"}, running={"type": "boolean"}, request=_ref(ExperimentRequest))
OPERATIONS: dict[str, Op] = {
    "openapi.document": Op("This document", public=True, refusals=()),
    "live.healthz": Op("Healthy or not (200/503); details with a login or the stream token",
                       _obj(ok={"type": "boolean"}, status={"type": "string"}), public=True, refusals=(503,)),
    "annotate.objects_geojson": Op("The image's boxes as QuPath objects (a GeoJSON download)", media="application/geo+json",
                                   refusals=(401, 404)),
    "annotate.get_annotation": Op("The boxes of one image", _ref(AnnotationDoc)),
    "annotate.put_annotation": Op("Save all boxes of one image (409 with the current one when stale)", _ref(AnnotationDoc),
                                  body=_ref(AnnotationBody), refusals=(400, 401, 404, 409, 413)),
    "annotate.delete_image": Op("Delete an image and its boxes",
                                _obj(deleted={"type": "string"}, boxes={"type": "integer"}, total={"type": "integer"})),
    "annotate.preannotate": Op("The running model's proposals for one image",
                               _obj(proposals={"type": "array", "items": OBJECT}, model={"type": "string"}),
                               refusals=(400, 401, 404, 503)),
    "capture.capture": Op("Save the newest full-resolution frame to the project",
                          _obj(image=_ref(ImageMeta), total={"type": "integer"}), status=201, refusals=(400, 401, 404, 503)),
    "capture.upload": Op("Upload images (all or none)",
                         _obj(images={"type": "array", "items": _ref(ImageMeta)}, total={"type": "integer"}),
                         status=201, upload=True, refusals=(400, 401, 404, 413)),
    "experiments.overview": Op("The running experiment, recent ones and calibration profiles",
                               _obj(active={"anyOf": [EXPERIMENT, {"type": "null"}]}, experiments={"type": "array", "items": EXPERIMENT},
                                    profiles={"type": "array", "items": _ref(CalibrationProfile)}), refusals=(401,)),
    "experiments.start": Op("Start an experiment", EXPERIMENT, status=201, body=_ref(ExperimentRequest),
                            refusals=(400, 401, 413)),
    "experiments.stop": Op("Stop the running experiment (400 when none runs)", EXPERIMENT, refusals=(400, 401)),
    "experiments.summary": Op("Counts, sizes, quality and tracking of one experiment", OBJECT),
    "experiments.objects_qupath": Op("The objects as QuPath detections (a GeoJSON download)",
                                     _obj(type={"const": "FeatureCollection"}, features={"type": "array", "items": OBJECT}),
                                     query={"file": {"type": "string", "description": "Only this image file's objects"}},
                                     media="application/geo+json", refusals=(401, 404)),
    "experiments.profiles": Op("Calibration profiles",
                               _obj(profiles={"type": "array", "items": _ref(CalibrationProfile)}), refusals=(401,)),
    "experiments.save_profile": Op("Save a calibration profile", _ref(CalibrationProfile), status=201, body=_ref(ProfileBody),
                                   refusals=(400, 401, 413)),
    "panel_live.stats": Op("Live statistics (FPS, counts per class)", refusals=(401,)),
    "panel_live.history": Op("Recent per-frame statistics", _obj(seconds={"type": "number"}, points={"type": "array", "items": OBJECT}),
                             query={"seconds": {"type": "number", "description": "How far back (10 s to 24 h)"}},
                             refusals=(401,)),
    "panel_live.sizes": Op("Size histogram of recent objects per class", refusals=(401,)),
    "panel_tracking.state": Op("Unique counts, open tracks, motility, counting line", refusals=(401, 409)),
    "panel_tracking.line": Op("Set or remove the counting line", _ref(TrackingLine), body=_ref(TrackingLine),
                              refusals=(400, 401, 409, 413)),
    "panel_tracking.settings": Op("Flow rate, depth, track ids", _ref(TrackingChanges), body=_ref(TrackingChanges),
                                  refusals=(400, 401, 409, 413)),
    "panel_tracking.reset": Op("Reset the unique counts", refusals=(400, 401, 409)),
    "inbox.listing": Op("The review inbox: kept frames with their reasons, newest first; counts of evicted and near-copies",
                        _obj(items={"type": "array", "items": OBJECT}, frames={"type": "integer"}, evicted={"type": "integer"}),
                        refusals=(401, 503)),
    "inbox.accept": Op("An inbox frame into the project with the model's boxes (it leaves the inbox)",
                       _obj(image=_ref(ImageMeta), boxes={"type": "integer"}, dropped={"type": "integer"}, fix={"type": "string"}),
                       status=201, body=_obj(model={"type": "string", "description": "Whose boxes (default the main model)"}),
                       refusals=(400, 401, 404, 503)),
    "inbox.skip": Op("Drop an inbox frame unreviewed (its files go with it)",
                     _obj(skipped={"type": "string"}, left={"type": "integer"}), refusals=(401, 404, 503)),
    "inbox.qc": Op("Count QC from the project's reviewed spot checks: per model version, its agreement with the reviewers "
                   "per class (Bland-Altman; docs/inbox.md)",
                   _obj(models={"type": "object", "additionalProperties": {"type": "array", "items": OBJECT}},
                        spot_checks={"type": "integer"}), refusals=(401, 404)),
    "inbox.model_checks": Op("The drift alarm and review inbox settings in force", _obj(drift=OBJECT, inbox=OBJECT),
                             refusals=(401, 503)),
    "inbox.configure_model_checks": Op("Change drift alarm and review inbox settings while the device runs (validated "
                                       "whole: a refused change changes nothing)", _obj(drift=OBJECT, inbox=OBJECT),
                                       body=_obj(drift=OBJECT, inbox=OBJECT), refusals=(400, 401, 413, 503)),
    "training.job_json": Op("One training job on the trainer service", refusals=(400, 401, 404, 502, 503)),
}


def openapi_path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """/a/<slug>/b/<int:n> -> (/a/{slug}/b/{n}, its path parameters)."""
    parameters = []
    for converter, name in PARAM.findall(rule):
        schema: dict[str, Any] = {"type": "integer", "minimum": 0} if converter == "int" else {"type": "string", "minLength": 1}
        if converter not in ("int", "path"):
            schema["pattern"] = "^[^/]+$"  # werkzeug's default converter: one path segment
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return PARAM.sub(r"{\2}", rule), parameters


def _schema(value: Schema) -> dict[str, Any]:
    return _ref(value) if isinstance(value, type) else value


def _operation(op: Op, method: str) -> dict[str, Any]:
    answers: dict[str, Any] = {str(op.status): {"description": op.summary, "content": {op.media: {"schema": _schema(op.answer)}}}}
    for code in op.refusals:
        answers[str(code)] = {"description": REASONS[code], "content": {"application/json": {"schema": ERROR}}}
    out: dict[str, Any] = {"summary": op.summary, "responses": answers}
    if op.query:
        out["parameters"] = [{"name": n, "in": "query", "required": False, "schema": s} for n, s in op.query.items()]
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": _schema(op.body)}}}
    if op.upload:
        files = {"type": "array", "items": {"type": "string", "format": "binary"}}
        out["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": _obj(files=files)}}}
    out["security"] = [] if op.public else ([{"session": [], "csrf": []}] if method != "get" else [{"session": []}])
    return out


def _components(spec: Any) -> None:
    _, defs = models_json_schema([(m, "validation") for m in MODELS], ref_template=REF)
    for name, schema in sorted(defs.get("$defs", {}).items()):
        spec.components.schema(name, schema)
    spec.components.schema("Error", {"type": "object", "required": ["error"],
                                     "properties": {"error": {"type": "string", "minLength": 1, "description": "What went wrong, for a person"}}})
    spec.components.security_scheme("session", {"type": "apiKey", "in": "cookie", "name": "session",
                                                "description": "Log in with POST /panel/login (form: password, csrf_token)"})
    spec.components.security_scheme("csrf", {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                                             "description": "The session's CSRF token, on every state-changing request"})


def build(app: Flask) -> dict[str, Any]:
    """The document for `app` as it is wired now (a device without the panel lists fewer paths)."""
    from apispec import APISpec

    spec = APISpec(title="ScopeHive device", version=__version__, openapi_version="3.1.0",
                   info={"description": "JSON API of the device web app and its panel (docs/api.md)."})
    _components(spec)
    paths: dict[str, dict[str, Any]] = {}
    parameters: dict[str, list[dict[str, Any]]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        op = OPERATIONS.get(rule.endpoint)
        if op is None:
            continue
        path, params = openapi_path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(op, method.lower())
        parameters[path] = params
    for path in sorted(paths):
        spec.path(path=path, operations=paths[path], parameters=parameters[path] or None)
    return spec.to_dict()  # type: ignore[no-any-return]


def stale_declarations(app: Flask) -> list[str]:
    """Declared operations whose endpoint the app does not have: a renamed or removed view."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    return sorted(set(OPERATIONS) - endpoints)


@bp.get("/openapi.json")
def document() -> Response:
    """Public, like /healthz: it names the routes, not any data (the code is open source)."""
    key = "scopehive.openapi"
    if key not in current_app.extensions:
        current_app.extensions[key] = build(current_app)  # type: ignore[arg-type]
    return jsonify(current_app.extensions[key])
