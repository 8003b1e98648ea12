"""Projects, images and annotations on top of a Storage: everything the panel's pages change.

Layout under the store:
    projects/<slug>/project.json                 Project
    projects/<slug>/images/<id>/meta.json        ImageMeta
    projects/<slug>/images/<id>/original<.ext>   the uploaded or captured bytes, untouched
    projects/<slug>/images/<id>/display.jpg      8-bit view for the browser
    projects/<slug>/images/<id>/thumb.jpg        small view for lists
    projects/<slug>/annotations/<id>.json        AnnotationDoc (revision-numbered)

Every annotation write names the revision it was based on; a stale one raises ConflictError, so
two tabs (or two people) can never overwrite each other silently.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import PurePosixPath

import numpy as np
from pydantic import ValidationError

import device.panel.names as names
from device.datasets.imageinfo import ImageInfo, check_image, decode
from device.datasets.package import DatasetError
from device.panel.classes import ClassEdit, apply_edits, new_project_classes, refuse_if_used
from device.panel.imaging import camera_channels, display_copies, encode_original
from device.panel.names import repair_project
from device.panel.records import (
    MAX_BOXES,
    Acquisition,
    AnnotationDoc,
    Box,
    ConflictError,
    ImageMeta,
    PanelError,
    Project,
    SpotCheck,
    safe_file_name,
    salvage_annotation,
    slugify,
)
from device.storage import Storage, StorageError

log = logging.getLogger(__name__)

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,59}")
_IMAGE_ID = re.compile(r"[0-9a-f]{12}")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ProjectStore:
    """All reads and writes of projects, images and annotations (Flask-free, so tests use it)."""

    def __init__(self, storage: Storage, max_image_pixels: int = 64_000_000) -> None:
        self.storage = storage
        self.max_image_pixels = max_image_pixels
        self._lock = threading.RLock()
        self._meta_cache: dict[tuple[str, str], ImageMeta] = {}

    # projects -------------------------------------------------------------------------------
    def list_projects(self) -> list[Project]:
        keys = [k for k in self.storage.list("projects/") if k.count("/") == 2 and k.endswith("/project.json")]
        projects = [p for p in (self._load_project(k) for k in keys) if p is not None]
        return sorted(projects, key=lambda p: p.name.lower())

    def project(self, slug: str) -> Project:
        if not _SLUG.fullmatch(slug):
            raise PanelError(f"there is no project '{slug[:60]}': pick one from the Projects page")
        try:
            project = self._load_project(f"projects/{slug}/project.json", missing_ok=False)
        except KeyError:
            raise PanelError(f"there is no project '{slug}': pick one from the Projects page") from None
        if project is None:
            raise PanelError(f"project '{slug}' is damaged (see the device log): restore projects/{slug}/project.json")
        return project

    def _load_project(self, key: str, missing_ok: bool = True) -> Project | None:
        """The stored project, with names from before validation repaired; None if unreadable."""
        try:
            raw = self.storage.get_json(key)
        except KeyError:
            if missing_ok:
                return None
            raise
        try:
            return Project.model_validate(repair_project(raw))
        except ValidationError as exc:
            log.error("%s is unreadable and is left out: %s", key, str(exc)[:300])
            return None

    def create_project(self, name: str, class_names: list[str]) -> Project:
        name = names.project_name(name)
        classes = new_project_classes(class_names)
        if not classes:
            raise PanelError("give the project at least one class (e.g. cell, crystal, debris): boxes need a class")
        with self._lock:
            base = slugify(name)
            slug, n = base, 1
            while self.storage.exists(f"projects/{slug}/project.json"):
                n += 1
                slug = f"{base}-{n}"
            project = Project(slug=slug, name=name, classes=classes, next_class_id=len(classes), created=_now())
            self._save_project(project)
        return project

    def rename_project(self, slug: str, name: str) -> Project:
        name = names.project_name(name)
        with self._lock:
            project = self.project(slug).model_copy(update={"name": name})
            self._save_project(project)
        return project

    def set_classes(self, slug: str, edits: list[ClassEdit]) -> Project:
        """Rename, recolour, reorder or add classes; removing one that boxes still use is refused.

        Boxes keep their class through all of it: they name the class's stable id.
        """
        with self._lock:
            project, removed = apply_edits(self.project(slug), edits)
            if removed:
                refuse_if_used(removed, self.class_usage(slug))
            self._save_project(project)
        return project

    def add_classes(self, slug: str, class_names: list[str]) -> Project:
        """Append the names the project does not have yet (dataset imports)."""
        with self._lock:
            project = self.project(slug)
            edits = [ClassEdit(c.id, c.name, c.color) for c in project.classes]
            extra = [n for n in dict.fromkeys(n.strip() for n in class_names) if n not in project.class_names]
            if not extra:
                return project
            return self.set_classes(slug, edits + [ClassEdit(None, n) for n in extra])

    def remove_class(self, slug: str, class_id: int, merge_into: int | None = None, delete_boxes: bool = False) -> Project:
        """Remove a class; its boxes are relabelled to `merge_into` or deleted, as the caller confirmed.

        Without either choice a class in use is refused with its box count. Every annotation that
        changes gets a new revision, so an open tab gets a conflict instead of overwriting it.
        """
        with self._lock:
            project = self.project(slug)
            spec = project.class_by_id(class_id)
            if spec is None:
                raise PanelError(f"class id {class_id} is not in project '{project.name}' (removed already?): reload the page")
            if merge_into is not None and (merge_into == class_id or project.class_by_id(merge_into) is None):
                raise PanelError(f"cannot merge '{spec.name}' into class id {merge_into}: pick another class of the project")
            usage = self.class_usage(slug)
            if usage[class_id] and merge_into is None and not delete_boxes:
                refuse_if_used([spec], usage)
            if usage[class_id]:
                self._relabel(slug, class_id, merge_into)
            project = project.model_copy(update={"classes": [c for c in project.classes if c.id != class_id]})
            self._save_project(project)
        return project

    def _relabel(self, slug: str, class_id: int, merge_into: int | None) -> None:
        for meta in self.list_images(slug):
            doc = self.annotation(slug, meta.id)
            if not any(b.class_id == class_id for b in doc.boxes):
                continue
            kept = [b for b in doc.boxes if b.class_id != class_id]
            if merge_into is not None:
                kept = [b if b.class_id != class_id else b.model_copy(update={"class_id": merge_into}) for b in doc.boxes]
            new = AnnotationDoc(revision=doc.revision + 1, boxes=kept, negative=doc.negative and not kept, updated=_now())
            self.storage.put_json(f"projects/{slug}/annotations/{meta.id}.json", new.model_dump(mode="json"))

    def class_usage(self, slug: str) -> Counter[int]:
        """Stable class id -> number of boxes that use it, over the whole project."""
        usage: Counter[int] = Counter()
        for meta in self.list_images(slug):
            usage.update(b.class_id for b in self.annotation(slug, meta.id).boxes)
        return usage

    def delete_project(self, slug: str) -> None:
        """Remove the project with its images, annotations and models (the caller confirmed)."""
        project = self.project(slug)
        with self._lock:
            self.storage.delete(f"projects/{project.slug}/project.json")  # first: the project is gone even if the rest fails
            self.storage.delete_prefix(f"projects/{project.slug}/")
            self._meta_cache = {k: v for k, v in self._meta_cache.items() if k[0] != project.slug}

    def _save_project(self, project: Project) -> None:
        self.storage.put_json(f"projects/{project.slug}/project.json", project.model_dump(mode="json"))

    # images -----------------------------------------------------------------------------------
    def list_images(self, slug: str) -> list[ImageMeta]:
        ids = sorted({k.split("/")[3] for k in self.storage.list(f"projects/{slug}/images/") if k.endswith("/meta.json")})
        metas = [self.image(slug, i) for i in ids]
        return sorted(metas, key=lambda m: (m.created, m.id))

    def image(self, slug: str, image_id: str) -> ImageMeta:
        if not _IMAGE_ID.fullmatch(image_id) or not _SLUG.fullmatch(slug):
            raise PanelError(f"image '{image_id[:60]}' is not in project '{slug[:60]}' (deleted?): reload the page")
        cached = self._meta_cache.get((slug, image_id))
        if cached is not None:
            return cached
        try:
            meta = ImageMeta.model_validate(self.storage.get_json(f"projects/{slug}/images/{image_id}/meta.json"))
        except KeyError:
            raise PanelError(f"image '{image_id}' is not in project '{slug}' (deleted?): reload the page") from None
        self._meta_cache[(slug, image_id)] = meta
        return meta

    def check_upload(self, data: bytes, file_name: str) -> ImageInfo:
        """What the image is; PanelError when `data` is not an acceptable image (nothing is stored)."""
        try:
            return check_image(data, file_name, self.max_image_pixels)
        except DatasetError as exc:
            raise PanelError(str(exc)) from exc

    def add_image(self, slug: str, data: bytes, file_name: str, source: str) -> ImageMeta:
        """Store an uploaded file byte for byte, plus its display copies."""
        self.project(slug)
        info = self.check_upload(data, file_name)
        stored_name = safe_file_name(file_name, info.suffixes)  # the extension follows the content, not the claim
        return self._store_image(slug, data, decode(data, file_name), stored_name, source)

    def add_frame(self, slug: str, image: np.ndarray, source: str = "capture", acquisition: Acquisition | None = None,
                  spot_check: SpotCheck | None = None) -> ImageMeta:
        """Store a captured frame losslessly at its own bit depth and with the camera's channels."""
        self.project(slug)
        image = camera_channels(image)
        data, suffix = encode_original(image)
        stamp = _now().strftime("%Y%m%dT%H%M%S%f")[:-3]
        return self._store_image(slug, data, image, f"capture_{stamp}{suffix}", source, acquisition, spot_check)

    def _store_image(self, slug: str, data: bytes, pixels: np.ndarray, file_name: str, source: str,
                     acquisition: Acquisition | None = None, spot_check: SpotCheck | None = None) -> ImageMeta:
        image_id = uuid.uuid4().hex[:12]
        prefix = f"projects/{slug}/images/{image_id}"
        suffix = PurePosixPath(file_name).suffix.lower() or ".png"
        with self._lock:
            taken = {m.file_name for m in self.list_images(slug)}
            stem, name, n = PurePosixPath(file_name).stem, file_name, 1
            while name in taken:
                n += 1
                name = f"{stem}_{n}{suffix}"
            meta = ImageMeta(
                id=image_id, file_name=name, width=int(pixels.shape[1]), height=int(pixels.shape[0]),
                dtype=str(pixels.dtype), channels=1 if pixels.ndim == 2 else int(pixels.shape[2]),
                original=f"{prefix}/original{suffix}", source=source, created=_now(), acquisition=acquisition,
                spot_check=spot_check,
            )
            display, thumb = display_copies(pixels)
            try:
                self.storage.put(meta.original, data)
                self.storage.put(f"{prefix}/display.jpg", display, "image/jpeg")
                self.storage.put(f"{prefix}/thumb.jpg", thumb, "image/jpeg")
                self.storage.put_json(f"{prefix}/meta.json", meta.model_dump(mode="json"))  # last: the commit point
            except StorageError:
                self._discard(prefix)
                raise
        return meta

    def _discard(self, prefix: str) -> None:
        """Best effort: remove the parts of an image whose commit (meta.json) never happened."""
        with contextlib.suppress(StorageError):
            self.storage.delete_prefix(prefix + "/")

    def delete_image(self, slug: str, image_id: str) -> None:
        with self._lock:
            self.storage.delete(f"projects/{slug}/images/{image_id}/meta.json")
            self.storage.delete_prefix(f"projects/{slug}/images/{image_id}/")
            self.storage.delete(f"projects/{slug}/annotations/{image_id}.json")
            self._meta_cache.pop((slug, image_id), None)

    def read(self, key: str) -> bytes:
        return self.storage.get(key)

    # annotations ------------------------------------------------------------------------------
    def annotation(self, slug: str, image_id: str) -> AnnotationDoc:
        key = f"projects/{slug}/annotations/{image_id}.json"
        try:
            raw = self.storage.get_json(key)
        except KeyError:
            return AnnotationDoc()
        try:
            return AnnotationDoc.model_validate(raw)
        except ValidationError:
            return salvage_annotation(key, raw)

    def save_annotation(self, slug: str, image_id: str, base_revision: int, boxes: list[Box], negative: bool = False) -> AnnotationDoc:
        """Write boxes based on `base_revision`; raises ConflictError when someone saved since."""
        project, meta = self.project(slug), self.image(slug, image_id)
        if len(boxes) > MAX_BOXES:
            raise PanelError(f"{len(boxes)} boxes in one image is more than the limit of {MAX_BOXES}: nothing was saved")
        ids = {c.id for c in project.classes}
        for box in boxes:
            if box.class_id not in ids:
                raise PanelError(f"class id {box.class_id} does not exist in project '{project.name}' (removed?): reload the page")
            if box.x2 <= box.x1 or box.y2 <= box.y1 or box.x1 < -1 or box.y1 < -1 or box.x2 > meta.width + 1 or box.y2 > meta.height + 1:
                raise PanelError(f"box {box.x1:.0f},{box.y1:.0f},{box.x2:.0f},{box.y2:.0f} is empty or outside the {meta.width}x{meta.height} image")
        with self._lock:
            current = self.annotation(slug, image_id)
            if current.revision != base_revision:
                raise ConflictError(current)
            doc = AnnotationDoc(revision=current.revision + 1, boxes=boxes, negative=negative and not boxes, updated=_now())
            self.storage.put_json(f"projects/{slug}/annotations/{image_id}.json", doc.model_dump(mode="json"))
        return doc

    def progress(self, slug: str) -> tuple[int, int]:
        """(annotated, total) images of the project."""
        metas = self.list_images(slug)
        return sum(self.annotation(slug, m.id).annotated for m in metas), len(metas)

