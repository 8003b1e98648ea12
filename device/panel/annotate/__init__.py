"""Annotate: the canvas page and its JSON API (every change saved at once, conflicts detected)."""

from __future__ import annotations

from typing import Any

import numpy as np
from flask import Blueprint, Response, abort, render_template, request
from pydantic import ValidationError

from device.detections import iou_matrix
from device.experiments.report import frame_geojson
from device.panel.base import project_for_api, require_project, runtime, state
from device.panel.inbox.spotchecks import inbox_of, publish_qc
from device.panel.jsonbody import json_object
from device.panel.records import MAX_BOXES
from device.panel.store import AnnotationDoc, Box, ConflictError, ImageMeta, PanelError
from device.web_protocol import NoModel

bp = Blueprint(
    "annotate", __name__, template_folder="templates", static_folder="static",
    static_url_path="/panel/static/annotate", url_prefix="/panel",
)


def _image(slug: str, image_id: str) -> ImageMeta:
    try:
        meta: ImageMeta = state().projects.image(slug, image_id)
        return meta
    except PanelError as exc:
        abort(404, description=str(exc))


@bp.get("/annotate", strict_slashes=False)
def index() -> str:
    project = require_project()
    store = state().projects
    images = [
        {"id": m.id, "file_name": m.file_name, "width": m.width, "height": m.height,
         "annotated": store.annotation(project.slug, m.id).annotated}
        for m in store.list_images(project.slug)
    ]
    return render_template(
        "annotate/index.html", project=project, images=images, start=request.args.get("image", ""),
        can_detect=runtime() is not None, class_colors={str(c.id): c.color for c in project.classes},
        class_names={str(c.id): c.name for c in project.classes},
    )


def _file(slug: str, image_id: str, name: str, mimetype: str) -> Response:
    _image(slug, image_id)
    try:
        data = state().projects.read(f"projects/{slug}/images/{image_id}/{name}")
    except KeyError:
        abort(404, description=f"{name} of image {image_id} is missing")
    return Response(data, mimetype=mimetype, headers={"Cache-Control": "private, max-age=86400"})


@bp.get("/api/projects/<slug>/images/<image_id>/display.jpg")
def display(slug: str, image_id: str) -> Response:
    return _file(slug, image_id, "display.jpg", "image/jpeg")


@bp.get("/api/projects/<slug>/images/<image_id>/thumb.jpg")
def thumb(slug: str, image_id: str) -> Response:
    return _file(slug, image_id, "thumb.jpg", "image/jpeg")


@bp.get("/api/projects/<slug>/images/<image_id>/original")
def original(slug: str, image_id: str) -> Response:
    meta = _image(slug, image_id)
    data = state().projects.read(meta.original)
    return Response(data, mimetype="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{meta.file_name}"'})


def _taken(meta: ImageMeta) -> float:
    captured = meta.acquisition.captured_at if meta.acquisition else None
    return (captured or meta.created).timestamp()


@bp.get("/api/projects/<slug>/images/<image_id>/objects.geojson")
def objects_geojson(slug: str, image_id: str) -> Response:
    """The image's boxes as QuPath objects (File > Import objects), class names and colours the project's."""
    project = project_for_api(slug)
    meta = _image(slug, image_id)
    doc: AnnotationDoc = state().projects.annotation(slug, image_id)
    by_id = {c.id: c for c in project.classes}
    boxes = [b for b in doc.boxes if b.class_id in by_id]
    body = frame_geojson([(b.x1, b.y1, b.x2, b.y2) for b in boxes], [by_id[b.class_id].name for b in boxes], [1.0] * len(boxes),
                         [by_id[b.class_id].color for b in boxes], _taken(meta), meta.file_name,
                         meta.acquisition.um_per_pixel if meta.acquisition else None)
    stem = meta.file_name.rsplit(".", 1)[0] or image_id
    return Response(body, mimetype="application/geo+json",
                    headers={"Content-Disposition": f'attachment; filename="{stem}.geojson"'})


@bp.get("/api/projects/<slug>/images/<image_id>/annotation")
def get_annotation(slug: str, image_id: str) -> dict[str, Any]:
    project_for_api(slug)
    _image(slug, image_id)
    doc: AnnotationDoc = state().projects.annotation(slug, image_id)
    return doc.model_dump(mode="json")


@bp.put("/api/projects/<slug>/images/<image_id>/annotation")
def put_annotation(slug: str, image_id: str) -> tuple[dict[str, Any], int]:
    """Body: {revision: the one the client edited, boxes: [{x1,y1,x2,y2,class_id}], negative}."""
    project_for_api(slug)
    _image(slug, image_id)
    body = json_object("send JSON {revision, boxes, negative}")
    revision, negative = body.get("revision"), body.get("negative", False)
    if type(revision) is not int:  # strict: true, 1.0 and "3" are not revisions
        abort(400, description="send JSON {revision, boxes, negative}: 'revision' must be a whole number")
    if not isinstance(negative, bool):  # strict: "no" would be truthy
        abort(400, description="'negative' must be true or false: nothing was saved")
    boxes = _boxes(body.get("boxes"))
    try:
        doc = state().projects.save_annotation(slug, image_id, revision, boxes, negative)
    except ConflictError as exc:
        return {"error": str(exc), "current": exc.current.model_dump(mode="json")}, 409
    except PanelError as exc:
        abort(400, description=str(exc))
    spot = state().projects.image(slug, image_id).spot_check
    if spot is not None:  # a fixed spot check changes the person's count: count QC follows
        publish_qc(inbox_of(runtime()), state().projects, state().projects.project(slug), spot)
    return doc.model_dump(mode="json"), 200


def _boxes(raw: object) -> list[Box]:
    """The request's boxes, or a 400 saying which one is wrong (nothing is saved)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        abort(400, description="'boxes' must be a list of {x1, y1, x2, y2, class_id}")
    if len(raw) > MAX_BOXES:
        abort(400, description=f"{len(raw)} boxes in one image is more than the limit of {MAX_BOXES}: nothing was saved")
    boxes = []
    for i, item in enumerate(raw):
        try:
            boxes.append(Box.model_validate(item))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "box"
            abort(400, description=f"box {i + 1} is invalid ({where}: {error['msg']}): nothing was saved")
    return boxes


@bp.delete("/api/projects/<slug>/images/<image_id>")
def delete_image(slug: str, image_id: str) -> tuple[dict[str, Any], int]:
    """The image, its display copies and its boxes; answers what went and how many images are left."""
    project_for_api(slug)
    _image(slug, image_id)
    boxes = len(state().projects.annotation(slug, image_id).boxes)
    state().projects.delete_image(slug, image_id)
    return {"deleted": image_id, "boxes": boxes, "total": len(state().projects.list_images(slug))}, 200


@bp.post("/api/projects/<slug>/images/<image_id>/preannotate")
def preannotate(slug: str, image_id: str) -> dict[str, Any]:
    """Proposals from the model the device runs now; the page lets the user accept or reject them."""
    project = project_for_api(slug)
    meta = _image(slug, image_id)
    device = runtime()
    card = device.model_card() if device is not None else None
    if card is None:
        abort(503, description="no model is running: choose one on the Models page first")
    from device.datasets.imageinfo import decode

    pixels = decode(state().projects.read(meta.original), meta.file_name)
    try:
        detections = device.detect(pixels).clipped(meta.width, meta.height)
    except NoModel as exc:  # the model was removed between the two calls
        abort(503, description=str(exc))
    ids = {c.name: c.id for c in project.classes}  # the model speaks names; boxes use stable ids
    proposals = []
    for record in detections.to_records(card.classes):
        name = record.get("class_name")
        if name in ids:
            x1, y1, x2, y2 = record["box"]  # type: ignore[misc]
            proposals.append({"x1": x1, "y1": y1, "x2": x2, "y2": y2, "class_id": ids[str(name)], "score": record["score"]})
    existing = state().projects.annotation(slug, image_id).boxes
    fresh = new_proposals(proposals, [b.model_dump() for b in existing])
    return {"proposals": fresh, "model": card.label, "already_annotated": len(proposals) - len(fresh)}


SAME_BOX_IOU = 0.5  # a proposal this close to a box of its class is that box again, not a new object


def new_proposals(proposals: list[dict[str, Any]], existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The proposals that are not already annotated: one that overlaps a box of the same class by
    IoU >= SAME_BOX_IOU is left out, so accepting proposals on an annotated image never doubles a
    box (whatever client asks)."""
    if not proposals or not existing:
        return proposals
    corners = ("x1", "y1", "x2", "y2")
    overlap = iou_matrix(np.array([[p[k] for k in corners] for p in proposals], float),
                         np.array([[e[k] for k in corners] for e in existing], float))
    same_class = np.array([p["class_id"] for p in proposals])[:, None] == np.array([e["class_id"] for e in existing])[None, :]
    taken = ((overlap >= SAME_BOX_IOU) & same_class).any(axis=1)
    return [p for p, t in zip(proposals, taken.tolist(), strict=True) if not t]
