"""YOLO txt (classes.txt, images/, labels/<stem>.txt with normalised cx cy w h): import and export."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

from device.datasets.archive import ImportResult, boxes_from, checked_image, image_files
from device.datasets.package import AnnotatedImage
from device.detections import Detections


def export_yolo(images: Sequence[AnnotatedImage], classes: Sequence[str]) -> dict[str, bytes]:
    files = {"classes.txt": ("\n".join(classes) + "\n").encode()}
    for img in images:
        lines = []
        for (x1, y1, x2, y2), cid in zip(img.boxes.xyxy.tolist(), img.boxes.class_ids.tolist(), strict=True):
            cx, cy = (x1 + x2) / 2 / img.width, (y1 + y2) / 2 / img.height
            w, h = (x2 - x1) / img.width, (y2 - y1) / img.height
            lines.append(f"{cid} {cx:.7f} {cy:.7f} {w:.7f} {h:.7f}")
        files[f"images/{img.file_name}"] = img.data
        files[f"labels/{PurePosixPath(img.file_name).stem}.txt"] = ("\n".join(lines) + "\n" if lines else "").encode()
    return files


def _classes(files: Mapping[str, bytes], result: ImportResult) -> list[str] | None:
    for path in files:
        if PurePosixPath(path).name in ("classes.txt", "obj.names"):
            return [line.strip() for line in files[path].decode("utf-8", "replace").splitlines() if line.strip()]
    for path in files:
        if PurePosixPath(path).name in ("data.yaml", "dataset.yaml"):
            import yaml

            names = (yaml.safe_load(files[path]) or {}).get("names")
            if isinstance(names, dict):
                return [str(names[k]) for k in sorted(names)]
            if isinstance(names, list):
                return [str(n) for n in names]
            result.problems.append(f"{path}: 'names' must list the class names")
            return None
    result.problems.append("the archive has no classes.txt (or data.yaml with names): add one class name per line")
    return None


def _parse_label(path: str, text: str, classes: int, result: ImportResult) -> list[tuple[float, float, float, float, int]] | None:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            cid, (cx, cy, w, h) = int(parts[0]), (float(v) for v in parts[1:5])
        except (ValueError, IndexError):
            result.problems.append(f"{path} line {number}: expected 'class cx cy w h', got '{line.strip()[:60]}'")
            return None
        if len(parts) != 5 or not 0 <= cid < classes or min(cx, cy, w, h) < 0 or max(cx, cy, w, h) > 1.0001:
            result.problems.append(f"{path} line {number}: class must be 0..{classes - 1} and coordinates 0..1: '{line.strip()[:60]}'")
            return None
        rows.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, cid))
    return rows


def import_yolo(files: Mapping[str, bytes], max_pixels: int) -> ImportResult:
    result = ImportResult()
    classes = _classes(files, result)
    if classes is None:
        return result
    result.classes = classes
    labels = {PurePosixPath(p).stem: (p, files[p]) for p in files if p.endswith(".txt") and "labels" in PurePosixPath(p).parts}
    images = image_files(files, result)
    for name, data in images.items():
        path, text = labels.pop(PurePosixPath(name).stem, (f"labels/{PurePosixPath(name).stem}.txt", b""))
        rows = _parse_label(path, text.decode("utf-8", "replace"), len(classes), result)
        if rows is None:
            continue
        image = checked_image(name, data, Detections.empty(), max_pixels, result)  # size first
        if image is None:
            continue
        scaled = [(x1 * image.width, y1 * image.height, x2 * image.width, y2 * image.height, c) for x1, y1, x2, y2, c in rows]
        boxes = boxes_from(path, scaled, result)
        if boxes is not None:
            result.images.append(AnnotatedImage(name, data, image.width, image.height, boxes.clipped(image.width, image.height)))
    for path, _ in labels.values():
        result.problems.append(f"{path}: no image with this name in the archive")
    return result

