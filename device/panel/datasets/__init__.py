"""Datasets: import/export COCO, VOC, YOLO, VIA; one-click export of the trainer's dataset package."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

from flask import Blueprint, Response, abort, flash, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from device.datasets.archive import ImportLimits, ImportResult
from device.datasets.formats import FORMATS, export_archive, import_archive
from device.datasets.package import AnnotatedImage, DatasetError, write_dataset_package
from device.detections import Detections
from device.panel.base import back, require_project, state
from device.panel.classes import ClassEdit
from device.panel.store import Box, PanelError, Project, ProjectStore
from device.panel.text import plural

bp = Blueprint("datasets", __name__, template_folder="templates", url_prefix="/panel/datasets")


def annotated_images(store: ProjectStore, project: Project) -> list[AnnotatedImage]:
    """Every annotated image of the project with its original bytes (unannotated ones stay out)."""
    position = project.export_index()  # boxes name stable class ids; exports use the list position
    out = []
    for meta in store.list_images(project.slug):
        doc = store.annotation(project.slug, meta.id)
        if not doc.annotated:
            continue
        kept = [b for b in doc.boxes if b.class_id in position]
        boxes = Detections.from_lists([[b.x1, b.y1, b.x2, b.y2] for b in kept], class_ids=[position[b.class_id] for b in kept])
        acquired = meta.acquisition.model_dump(mode="json") if meta.acquisition else None
        out.append(AnnotatedImage(meta.file_name, store.read(meta.original), meta.width, meta.height, boxes, acquired))
    return out


def save_import(store: ProjectStore, project: Project, result: ImportResult) -> int:
    """Store a problem-free import; if any write fails, the images already added are removed."""
    before = [ClassEdit(c.id, c.name, c.color) for c in project.classes]
    project = store.add_classes(project.slug, result.classes)
    by_name = {c.name: c.id for c in project.classes}
    ids = [by_name[name.strip()] for name in result.classes]
    added: list[str] = []
    try:
        for image in result.images:
            meta = store.add_image(project.slug, image.data, image.file_name, "import")
            added.append(meta.id)
            boxes = [
                Box(x1=x1, y1=y1, x2=x2, y2=y2, class_id=ids[c])
                for (x1, y1, x2, y2), c in zip(image.boxes.xyxy.tolist(), image.boxes.class_ids.tolist(), strict=True)
            ]
            store.save_annotation(project.slug, meta.id, 0, boxes, negative=not boxes)
    except BaseException:
        for image_id in added:
            store.delete_image(project.slug, image_id)
        store.set_classes(project.slug, before)
        raise
    return len(added)


@bp.get("/")
def index() -> str:
    project = require_project()
    done, total = state().projects.progress(project.slug)
    return render_template("datasets/index.html", project=project, formats=FORMATS, done=done, total=total)


def _download(data: bytes, name: str) -> Response:
    return Response(data, mimetype="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/export/<key>")
def export(key: str) -> Response:
    project = require_project()
    if key not in FORMATS:
        abort(404, description=f"unknown format '{key}'")
    images = annotated_images(state().projects, project)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return _download(export_archive(key, images, project.class_names), f"{project.slug}-{key}-{stamp}.zip")


@bp.get("/package")
def package() -> BaseResponse:
    """The zip the trainer reads (docs/formats.md, section 1)."""
    project = require_project()
    images = annotated_images(state().projects, project)
    if not images or not project.classes:
        flash("Nothing to export yet: annotate at least one image (and give the project classes).", "error")
        return back("datasets.index")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "package.zip"
        write_dataset_package(path, project.name, project.class_names, images)
        data = path.read_bytes()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return _download(data, f"{project.slug}-dataset-{stamp}.zip")


def _refused(message: str) -> tuple[str, int]:
    """A refused import: the datasets page with the reason, as a 400 (nothing was stored)."""
    flash(message, "error")
    return index(), 400


@bp.post("/import")
def import_() -> BaseResponse | tuple[str, int]:
    """The upload is streamed from werkzeug's spooled file; only the entries the format uses are unpacked."""
    project = require_project()
    file, key = request.files.get("archive"), request.form.get("format", "")
    if file is None or not file.filename or key not in FORMATS:
        return _refused("Choose a format and a .zip archive to import.")
    try:
        limits = ImportLimits.for_upload(state().settings.max_upload_mb << 20)
        workdir = state().data_dir / "cache" / "tmp"
        result = import_archive(key, file.stream, state().settings.max_image_pixels, limits, workdir)
        if result.problems:
            return _refused(f"Nothing was imported from {file.filename}; fix these problems and try again:\n" + "\n".join(result.problems[:50]))
        count = save_import(state().projects, project, result)
    except (DatasetError, PanelError) as exc:
        return _refused(f"Nothing was imported from {file.filename}: {exc}")
    flash(f"Imported {plural(count, 'annotated image')} from {file.filename} ({FORMATS[key].title}).", "ok")
    return back("datasets.index")
