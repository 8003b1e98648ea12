"""VGG Image Annotator (VIA 2) project JSON with rectangle regions: import and export."""

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
from device.datasets.package import AnnotatedImage

ATTRIBUTE = "class"


def export_via(images: Sequence[AnnotatedImage], classes: Sequence[str]) -> dict[str, bytes]:
    metadata: dict[str, Any] = {}
    for img in images:
        regions = []
        for (x1, y1, x2, y2), cid in zip(img.boxes.xyxy.tolist(), img.boxes.class_ids.tolist(), strict=True):
            shape = {"name": "rect", "x": round(x1, 3), "y": round(y1, 3), "width": round(x2 - x1, 3), "height": round(y2 - y1, 3)}
            regions.append({"shape_attributes": shape, "region_attributes": {ATTRIBUTE: classes[cid]}})
        metadata[f"{img.file_name}{len(img.data)}"] = {"filename": img.file_name, "size": len(img.data), "regions": regions, "file_attributes": {}}
    project = {
        "_via_settings": {"project": {"name": "scopehive"}},
        "_via_img_metadata": metadata,
        "_via_attributes": {"region": {ATTRIBUTE: {"type": "dropdown", "description": "", "options": {c: "" for c in classes}, "default_options": {}}}, "file": {}},
    }
    files = {f"images/{img.file_name}": img.data for img in images}
    files["via_project.json"] = json.dumps(project, indent=1).encode()
    return files


def _document(files: Mapping[str, bytes], result: ImportResult) -> tuple[str, dict[str, Any], list[str]] | None:
    for path, doc in json_documents(files, result):
        if not isinstance(doc, dict):
            continue
        options = ((doc.get("_via_attributes") or {}).get("region") or {}).get(ATTRIBUTE, {}).get("options") or {}
        metadata = doc.get("_via_img_metadata", doc)
        if isinstance(metadata, dict) and metadata and all(isinstance(v, dict) and "filename" in v for v in metadata.values()):
            return path, metadata, list(options)
    result.problems.append("the archive holds no VIA JSON (a project or region export with 'filename' and 'regions')")
    return None


def _label(region: dict[str, Any]) -> str:
    attrs = region.get("region_attributes") or {}
    value = attrs.get(ATTRIBUTE) if ATTRIBUTE in attrs else (next(iter(attrs.values())) if len(attrs) == 1 else "")
    if isinstance(value, dict):  # checkbox attributes: {"cell": true}
        value = next((k for k, v in value.items() if v), "")
    return str(value or "").strip()


def import_via(files: Mapping[str, bytes], max_pixels: int) -> ImportResult:
    result = ImportResult()
    located = _document(files, result)
    if located is None:
        return result
    path, metadata, classes = located
    images = image_files(files, result)
    for entry in metadata.values():
        name = str(entry["filename"]).replace("\\", "/").rsplit("/", 1)[-1]
        if name not in images:
            result.problems.append(f"{path}: image '{name}' is listed but its file is not in the archive")
            continue
        rows = []
        for region in entry.get("regions") or []:
            shape, label = region.get("shape_attributes") or {}, _label(region)
            if shape.get("name") != "rect" or not label:
                result.problems.append(f"{path}: '{name}' has a region that is not a labelled rectangle (shape {shape.get('name')!r}, class {label!r})")
                continue
            if label not in classes:
                classes.append(label)
            x, y, w, h = (float(shape.get(k, "nan")) for k in ("x", "y", "width", "height"))
            rows.append((x, y, x + w, y + h, classes.index(label)))
        boxes = boxes_from(name, rows, result)
        image = checked_image(name, images[name], boxes, max_pixels, result) if boxes is not None else None
        if image is not None:
            result.images.append(image)
    result.classes = classes
    return result
