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
import re
import threading
import uuid
from datetime import datetime, timezone
from pathlib import PurePosixPath

import numpy as np

from device.datasets.imageinfo import check_image, decode
from device.datasets.package import DatasetError
from device.panel.imaging import camera_channels, display_copies, encode_original
from device.panel.records import (
    PALETTE,
    Acquisition,
    AnnotationDoc,
    Box,
    ClassSpec,
    ConflictError,
    ImageMeta,
    PanelError,
    Project,
    safe_file_name,
    slugify,
)
from device.storage import Storage, StorageError

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
        projects = [Project.model_validate(self.storage.get_json(k)) for k in keys]
        return sorted(projects, key=lambda p: p.name.lower())

    def project(self, slug: str) -> Project:
        if not _SLUG.fullmatch(slug):
            raise PanelError(f"there is no project '{slug[:60]}': pick one from the Projects page")
        try:
            return Project.model_validate(self.storage.get_json(f"projects/{slug}/project.json"))
        except KeyError:
            raise PanelError(f"there is no project '{slug}': pick one from the Projects page") from None

    def create_project(self, name: str, class_names: list[str]) -> Project:
        name = name.strip()
        if not name:
            raise PanelError("give the project a name")
        if not _clean_classes(class_names):
            raise PanelError("give the project at least one class (e.g. cell, crystal, debris): boxes need a class")
        with self._lock:
            base = slugify(name)
            slug, n = base, 1
            while self.storage.exists(f"projects/{slug}/project.json"):
                n += 1
                slug = f"{base}-{n}"
            classes = [ClassSpec(name=c, color=PALETTE[i % len(PALETTE)]) for i, c in enumerate(_clean_classes(class_names))]
            project = Project(slug=slug, name=name, classes=classes, created=_now())
            self._save_project(project)
        return project

    def rename_project(self, slug: str, name: str) -> Project:
        if not name.strip():
            raise PanelError("give the project a name")
        with self._lock:
            project = self.project(slug).model_copy(update={"name": name.strip()})
            self._save_project(project)
        return project

    def set_classes(self, slug: str, classes: list[ClassSpec]) -> Project:
        """Rename, recolour or add classes; removing one that boxes still use is refused."""
        names = _clean_classes([c.name for c in classes])
        with self._lock:
            project = self.project(slug)
            if len(names) < len(project.classes):
                used = self._used_class_ids(slug)
                gone = [project.classes[i].name for i in used if i >= len(names)]
                if gone:
                    raise PanelError(f"class '{gone[0]}' is still used by boxes: delete or relabel those boxes first")
            project = project.model_copy(update={"classes": [ClassSpec(name=n, color=c.color) for n, c in zip(names, classes, strict=True)]})
            self._save_project(project)
        return project

    def add_classes(self, slug: str, names: list[str]) -> Project:
        project = self.project(slug)
        extra = [n for n in names if n not in project.class_names]
        if not extra:
            return project
        start = len(project.classes)
        specs = project.classes + [ClassSpec(name=n, color=PALETTE[(start + i) % len(PALETTE)]) for i, n in enumerate(extra)]
        return self.set_classes(slug, specs)

    def delete_project(self, slug: str) -> None:
        """Remove the project with its images, annotations and models (the caller confirmed)."""
        project = self.project(slug)
        with self._lock:
            self.storage.delete(f"projects/{project.slug}/project.json")  # first: the project is gone even if the rest fails
            self.storage.delete_prefix(f"projects/{project.slug}/")
            self._meta_cache = {k: v for k, v in self._meta_cache.items() if k[0] != project.slug}

    def _save_project(self, project: Project) -> None:
        self.storage.put_json(f"projects/{project.slug}/project.json", project.model_dump(mode="json"))

    def _used_class_ids(self, slug: str) -> set[int]:
        used: set[int] = set()
        for meta in self.list_images(slug):
            used.update(b.class_id for b in self.annotation(slug, meta.id).boxes)
        return used

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

    def check_upload(self, data: bytes, file_name: str) -> None:
        """Raise PanelError when `data` is not an acceptable image (nothing is stored)."""
        try:
            check_image(data, file_name, self.max_image_pixels)
        except DatasetError as exc:
            raise PanelError(str(exc)) from exc

    def add_image(self, slug: str, data: bytes, file_name: str, source: str) -> ImageMeta:
        """Store an uploaded file byte for byte, plus its display copies."""
        self.project(slug)
        self.check_upload(data, file_name)
        return self._store_image(slug, data, decode(data, file_name), safe_file_name(file_name), source)

    def add_frame(self, slug: str, image: np.ndarray, source: str = "capture", acquisition: Acquisition | None = None) -> ImageMeta:
        """Store a captured frame losslessly at its own bit depth and with the camera's channels."""
        self.project(slug)
        image = camera_channels(image)
        data, suffix = encode_original(image)
        stamp = _now().strftime("%Y%m%dT%H%M%S%f")[:-3]
        return self._store_image(slug, data, image, f"capture_{stamp}{suffix}", source, acquisition)

    def _store_image(self, slug: str, data: bytes, pixels: np.ndarray, file_name: str, source: str,
                     acquisition: Acquisition | None = None) -> ImageMeta:
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
        try:
            return AnnotationDoc.model_validate(self.storage.get_json(f"projects/{slug}/annotations/{image_id}.json"))
        except KeyError:
            return AnnotationDoc()

    def save_annotation(self, slug: str, image_id: str, base_revision: int, boxes: list[Box], negative: bool = False) -> AnnotationDoc:
        """Write boxes based on `base_revision`; raises ConflictError when someone saved since."""
        project, meta = self.project(slug), self.image(slug, image_id)
        for box in boxes:
            if box.class_id >= len(project.classes):
                raise PanelError(f"class id {box.class_id} does not exist in project '{project.name}'")
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


def _clean_classes(names: list[str]) -> list[str]:
    cleaned = [n.strip() for n in names if n.strip()]
    if len(set(cleaned)) != len(cleaned):
        raise PanelError("class names must be unique")
    for name in cleaned:
        if len(name) > 64 or any(ch in name for ch in "\n\r\t,"):
            raise PanelError(f"class name '{name[:70]}' is not allowed: up to 64 characters, no commas or line breaks")
    return cleaned
