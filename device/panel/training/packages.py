"""What a Train press sends: the project's frames split into a training package and a fixed held-out
package, and the running model's bundle to compare with, all written to the store shared with the trainer.

The held-out set is chosen once and only ever grows: an image put aside stays aside as the
project grows (new annotated images are added to it until it is again `HELD_OUT_SHARE` of the
project), so successive models are scored on the same frames and never trained on them. The
choice is by a hash of the image id, so it is stable and needs no random state.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from device.datasets.package import AnnotatedImage, write_dataset_package
from device.detections import Detections
from device.models.bundle import BundleError, ModelCard, load_bundle
from device.panel.modelstore import ModelStore
from device.panel.store import Project, ProjectStore
from device.storage import Storage

HELD_OUT_SHARE = 0.15
WARM_START_FILES = ("warm_start.weights.h5", "warm_start.json")  # written by the trainer into every bundle
MIN_IMAGES_FOR_HELD_OUT = 6  # below this every frame is needed for training


def held_out_key(slug: str) -> str:
    return f"projects/{slug}/training/held_out.json"


def grow_held_out(annotated: list[str], kept: list[str], share: float = HELD_OUT_SHARE) -> list[str]:
    """The held-out ids after this press: every id kept before, plus new annotated ones (stable
    order by hash) until the set is `share` of the annotated images. Nothing is ever taken out."""
    held = list(dict.fromkeys(kept))
    if len(annotated) < MIN_IMAGES_FOR_HELD_OUT:
        return held
    wanted = max(1, round(share * len(annotated)))
    candidates = sorted((i for i in annotated if i not in set(held)), key=lambda i: hashlib.sha256(i.encode()).hexdigest())
    counted = sum(1 for i in held if i in set(annotated))
    return held + candidates[: max(0, wanted - counted)]


def load_held_out(storage: Storage, slug: str) -> list[str]:
    try:
        doc = storage.get_json(held_out_key(slug))
    except KeyError:
        return []
    return [str(i) for i in doc.get("image_ids", [])]


def save_held_out(storage: Storage, slug: str, ids: list[str]) -> None:
    storage.put_json(held_out_key(slug), {"image_ids": ids, "updated": datetime.now(timezone.utc).isoformat()})


@dataclass
class ProjectFrames:
    """The project's annotated images, split into training and held-out, with what they hold."""

    train: list[AnnotatedImage] = field(default_factory=list)
    held_out: list[AnnotatedImage] = field(default_factory=list)
    boxes: Counter[str] = field(default_factory=Counter)
    held_out_boxes: Counter[str] = field(default_factory=Counter)
    unannotated: int = 0


def collect(store: ProjectStore, project: Project, held_ids: set[str], with_bytes: bool = True) -> ProjectFrames:
    """Annotated images with their boxes (class ids as the export's list positions)."""
    position = project.export_index()
    names = project.class_names
    frames = ProjectFrames()
    for meta in store.list_images(project.slug):
        doc = store.annotation(project.slug, meta.id)
        if not doc.annotated:
            frames.unannotated += 1
            continue
        kept = [b for b in doc.boxes if b.class_id in position]
        counts = frames.held_out_boxes if meta.id in held_ids else frames.boxes
        counts.update(names[position[b.class_id]] for b in kept)
        boxes = Detections.from_lists([[b.x1, b.y1, b.x2, b.y2] for b in kept], class_ids=[position[b.class_id] for b in kept])
        acquired = meta.acquisition.model_dump(mode="json") if meta.acquisition else None
        data = store.read(meta.original) if with_bytes else b""
        image = AnnotatedImage(meta.file_name, data, meta.width, meta.height, boxes, acquired)
        (frames.held_out if meta.id in held_ids else frames.train).append(image)
    return frames


def annotated_ids(store: ProjectStore, project: Project) -> list[str]:
    return [m.id for m in store.list_images(project.slug) if store.annotation(project.slug, m.id).annotated]


def package_bytes(project: Project, images: list[AnnotatedImage]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "package.zip"
        write_dataset_package(path, project.name, project.class_names, images)
        return path.read_bytes()


def put_content_addressed(storage: Storage, prefix: str, name: str, data: bytes) -> str:
    """Same bytes, same key: pressing Check twice stores one package."""
    key = f"{prefix}/{name}-{hashlib.sha256(data).hexdigest()[:16]}.zip"
    if not storage.exists(key):
        storage.put(key, data, "application/zip")
    return key


def _zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("model.onnx", "model.json", *WARM_START_FILES):  # what scoring and warm start need; engines stay home
            if (folder / name).is_file():
                archive.write(folder / name, name)
    return buffer.getvalue()


def running_bundle(models: ModelStore, project: Project, running: ModelCard | None, configured: str | None) -> tuple[bytes | None, str]:
    """The bundle zip of the model the device runs (to score it beside the new one), and where it came from.

    The project's stored models first; else the bundle the device config names, if it is the one
    running (the demo model, a bundle given with --model)."""
    if running is None:
        return None, "the device runs no model"
    model_id = models.running_id(project, running)
    if model_id is not None:
        return models.storage.get(f"projects/{project.slug}/models/{model_id}/bundle.zip"), f"model {running.label} of this project"
    if configured:
        path = Path(configured)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                bundle = load_bundle(path, Path(tmp))
                if bundle.card == running:
                    return (path.read_bytes() if path.is_file() else _zip_folder(bundle.root)), f"model {running.label} (device config)"
        except (BundleError, OSError):
            pass
    return None, f"the running model {running.label} is not among this project's models: upload its bundle on the Models page to compare"


def summary(frames: ProjectFrames, project: Project) -> dict[str, Any]:
    return {"train_images": len(frames.train), "held_out_images": len(frames.held_out), "unannotated": frames.unannotated,
            "boxes": {n: frames.boxes.get(n, 0) for n in project.class_names},
            "held_out_boxes": {n: frames.held_out_boxes.get(n, 0) for n in project.class_names}}
