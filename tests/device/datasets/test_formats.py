"""Every exchange format round-trips (export then import gives the same boxes) and reports problems per file."""

from __future__ import annotations

import io
import json
import zipfile

import cv2
import numpy as np
import pytest

from device.datasets.formats import FORMATS, export_archive, import_archive
from device.datasets.package import AnnotatedImage, DatasetError, synthetic_images
from device.detections import Detections

CLASSES = ["cell", "crystal", "debris"]
MAX_PIXELS = 10_000_000


def _tiff16() -> AnnotatedImage:
    image = (np.indices((90, 120)).sum(axis=0) * 300).astype(np.uint16)
    ok, data = cv2.imencode(".tiff", image)
    assert ok
    boxes = Detections.from_lists([[10.5, 20.25, 40.75, 60.0], [0, 0, 120, 90]], class_ids=[2, 0])
    return AnnotatedImage("deep.tiff", data.tobytes(), 120, 90, boxes)


@pytest.fixture(scope="module")
def dataset() -> list[AnnotatedImage]:
    images = list(synthetic_images(3, seed=3, width=200, height=150))
    negative = AnnotatedImage("empty.png", images[0].data, 200, 150, Detections.empty())
    return [*images, negative, _tiff16()]


@pytest.mark.parametrize("key", sorted(FORMATS))
def test_export_then_import_gives_the_same_boxes(key: str, dataset: list[AnnotatedImage]) -> None:
    archive = export_archive(key, dataset, CLASSES)
    result = import_archive(key, archive, MAX_PIXELS)
    assert result.problems == []
    assert result.classes[: len(CLASSES)] == CLASSES
    back = {img.file_name: img for img in result.images}
    assert sorted(back) == sorted(img.file_name for img in dataset)
    for original in dataset:
        got = back[original.file_name]
        assert got.data == original.data, "images must come back byte for byte"
        assert (got.width, got.height) == (original.width, original.height)
        order = np.lexsort(original.boxes.xyxy.T[::-1])
        got_order = np.lexsort(got.boxes.xyxy.T[::-1])
        np.testing.assert_allclose(got.boxes.xyxy[got_order], original.boxes.xyxy[order], atol=0.01)
        names = [result.classes[c] for c in got.boxes.class_ids[got_order]]
        assert names == [CLASSES[c] for c in original.boxes.class_ids[order]]


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("key", sorted(FORMATS))
def test_zip_slip_is_refused(key: str) -> None:
    with pytest.raises(DatasetError, match="escape"):
        import_archive(key, _zip({"../../evil.png": b"x"}), MAX_PIXELS)


def test_not_a_zip_is_refused() -> None:
    with pytest.raises(DatasetError, match="not a readable zip"):
        import_archive("coco", b"hello", MAX_PIXELS)


@pytest.mark.parametrize("key", sorted(FORMATS))
def test_every_problem_is_named_per_file(key: str, dataset: list[AnnotatedImage]) -> None:
    files = FORMATS[key].export(dataset, CLASSES)
    files["images/synthetic_0003_00001.png"] = b"this is not an image"
    big = np.zeros((10, 10), np.uint8)
    files["images/empty.png"] = cv2.imencode(".png", big)[1].tobytes()  # size no longer matches its boxes/header
    result = import_archive(key, _zip(files), MAX_PIXELS)
    text = "\n".join(result.problems)
    assert "synthetic_0003_00001.png: not a PNG, JPEG or TIFF image" in text
    if key in ("coco", "voc"):
        assert "empty.png: annotations say 200x150 but the image is 10x10" in text


def test_oversized_images_are_refused(dataset: list[AnnotatedImage]) -> None:
    result = import_archive("yolo", export_archive("yolo", dataset, CLASSES), max_pixels=200 * 150 - 1)
    assert any("over the limit" in p for p in result.problems)


def test_boxes_outside_the_image_are_problems(dataset: list[AnnotatedImage]) -> None:
    files = FORMATS["coco"].export(dataset[:1], CLASSES)
    doc = json.loads(files["annotations.json"])
    doc["annotations"][0]["bbox"] = [190, 140, 50, 50]
    files["annotations.json"] = json.dumps(doc).encode()
    result = import_archive("coco", _zip(files), MAX_PIXELS)
    assert any("outside the 200x150 image" in p for p in result.problems)


def test_yolo_bad_label_line_names_file_and_line(dataset: list[AnnotatedImage]) -> None:
    files = FORMATS["yolo"].export(dataset[:1], CLASSES)
    files["labels/synthetic_0003_00000.txt"] = b"0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n"
    result = import_archive("yolo", _zip(files), MAX_PIXELS)
    assert result.problems and result.problems[0].startswith("labels/synthetic_0003_00000.txt line 2")
