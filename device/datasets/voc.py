"""Pascal VOC XML as labelImg writes it (one .xml per image, pixel corners): import and export."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

from device.datasets.archive import ImportResult, boxes_from, checked_image, image_files
from device.datasets.package import AnnotatedImage


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")


def _xml(img: AnnotatedImage, classes: Sequence[str]) -> bytes:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "images"
    ET.SubElement(root, "filename").text = img.file_name
    size = ET.SubElement(root, "size")
    for tag, value in (("width", img.width), ("height", img.height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for (x1, y1, x2, y2), cid in zip(img.boxes.xyxy.tolist(), img.boxes.class_ids.tolist(), strict=True):
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = classes[cid]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        box = ET.SubElement(obj, "bndbox")
        for tag, value in (("xmin", x1), ("ymin", y1), ("xmax", x2), ("ymax", y2)):
            ET.SubElement(box, tag).text = _number(value)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def export_voc(images: Sequence[AnnotatedImage], classes: Sequence[str]) -> dict[str, bytes]:
    files = {"classes.txt": ("\n".join(classes) + "\n").encode()}
    for img in images:
        files[f"images/{img.file_name}"] = img.data
        files[f"Annotations/{PurePosixPath(img.file_name).stem}.xml"] = _xml(img, classes)
    return files


def _parse(path: str, data: bytes, classes: list[str], result: ImportResult) -> tuple[str, tuple[int, int] | None, list[tuple[float, float, float, float, int]]] | None:
    try:
        root = ET.fromstring(data)
        name = (root.findtext("filename") or "").replace("\\", "/").rsplit("/", 1)[-1]
        width, height = root.findtext("size/width"), root.findtext("size/height")
        size = (int(width), int(height)) if width and height and int(width) > 0 else None
        rows = []
        for obj in root.iter("object"):
            label = (obj.findtext("name") or "").strip()
            coords = [float(obj.findtext(f"bndbox/{t}") or "nan") for t in ("xmin", "ymin", "xmax", "ymax")]
            if not label or any(c != c for c in coords):
                raise ValueError("an <object> lacks <name> or a <bndbox> coordinate")
            if label not in classes:
                classes.append(label)
            rows.append((coords[0], coords[1], coords[2], coords[3], classes.index(label)))
    except (ET.ParseError, ValueError) as exc:
        result.problems.append(f"{path}: not a usable Pascal VOC file ({exc})")
        return None
    if not name:
        result.problems.append(f"{path}: <filename> is missing")
        return None
    return name, size, rows


def import_voc(files: Mapping[str, bytes], max_pixels: int) -> ImportResult:
    result = ImportResult()
    listed = next((files[p] for p in files if PurePosixPath(p).name in ("classes.txt", "predefined_classes.txt")), b"")
    classes = [line.strip() for line in listed.decode("utf-8", "replace").splitlines() if line.strip()]
    images = image_files(files, result)
    annotated: set[str] = set()
    for path in sorted(p for p in files if p.lower().endswith(".xml")):
        parsed = _parse(path, files[path], classes, result)
        if parsed is None:
            continue
        name, size, rows = parsed
        annotated.add(name)
        if name not in images:
            result.problems.append(f"{path}: its image '{name}' is not in the archive")
            continue
        boxes = boxes_from(path, rows, result)
        image = checked_image(name, images[name], boxes, max_pixels, result, size) if boxes is not None else None
        if image is not None:
            result.images.append(image)
    for name in sorted(set(images) - annotated):
        result.problems.append(f"{name}: no .xml annotation names this image: add one (an empty one for no objects)")
    result.classes = classes
    return result
