"""COCO detection JSON (one annotations file + images): import and export."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from device.datasets.archive import (
    ImportResult,
    boxes_from,
    checked_image,
    image_files,
    json_documents,
)
from device.datasets.package import AnnotatedImage, coco_document

ANNOTATIONS = "annotations.json"


def export_coco(images: Sequence[AnnotatedImage], classes: Sequence[str]) -> dict[str, bytes]:
    files = {f"images/{img.file_name}": img.data for img in images}
    files[ANNOTATIONS] = json.dumps(coco_document(images, classes), indent=1).encode()
    return files


def _find_document(files: Mapping[str, bytes], result: ImportResult) -> tuple[str, dict[str, Any]] | None:
    found: list[tuple[str, dict[str, Any]]] = []
    for path, doc in json_documents(files, result):
        if isinstance(doc, dict) and "images" in doc and "annotations" in doc:
            found.append((path, doc))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        result.problems.append(f"the archive holds {what} COCO files (JSON with 'images' and 'annotations'): it needs exactly one")
        return None
    return found[0]


def import_coco(files: Mapping[str, bytes], max_pixels: int) -> ImportResult:
    result = ImportResult()
    located = _find_document(files, result)
    if located is None:
        return result
    path, doc = located
    try:
        categories = sorted(doc.get("categories") or [], key=lambda c: int(c["id"]))
        result.classes = [str(c["name"]) for c in categories]
        class_of = {int(c["id"]): i for i, c in enumerate(categories)}
        entries = {int(img["id"]): img for img in doc["images"]}
    except (KeyError, TypeError, ValueError) as exc:
        result.problems.append(f"{path}: 'categories' or 'images' entries lack id/name/file_name ({exc})")
        return result
    rows: dict[int, list[tuple[float, float, float, float, int]]] = {i: [] for i in entries}
    for ann in doc["annotations"]:
        try:
            x, y, w, h = (float(v) for v in ann["bbox"])
            image_id, category = int(ann["image_id"]), int(ann["category_id"])
        except (KeyError, TypeError, ValueError) as exc:
            result.problems.append(f"{path}: annotation {ann.get('id', '?')} is malformed ({exc})")
            continue
        if image_id not in rows or category not in class_of:
            result.problems.append(f"{path}: annotation {ann.get('id', '?')} names an unknown image or category")
            continue
        rows[image_id].append((x, y, x + w, y + h, class_of[category]))
    images = image_files(files, result)
    listed = set()
    for image_id, entry in entries.items():
        name = str(entry.get("file_name", "")).replace("\\", "/").rsplit("/", 1)[-1]
        listed.add(name)
        if name not in images:
            result.problems.append(f"{path}: image '{name}' is listed but its file is not in the archive")
            continue
        boxes = boxes_from(name, rows[image_id], result)
        size = (int(entry["width"]), int(entry["height"])) if "width" in entry and "height" in entry else None
        image = checked_image(name, images[name], boxes, max_pixels, result, size) if boxes is not None else None
        if image is not None:
            result.images.append(image)
    for name in sorted(set(images) - listed):
        result.problems.append(f"{name}: the image is in the archive but not in {path}: add it there or remove the file")
    return result
