import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.datasets.package import (
    DatasetError,
    load_package_boxes,
    read_manifest,
    sha256,
    write_dataset_package,
)


def test_synthetic_package_is_complete_and_consistent(small_package: Path) -> None:
    manifest = read_manifest(small_package)
    assert manifest.image_count == 12 and manifest.classes == ["cell", "crystal", "debris"]
    with zipfile.ZipFile(small_package) as archive:
        coco = json.loads(archive.read("annotations.json"))
        for name, digest in manifest.images.items():
            data = archive.read(f"images/{name}")
            assert sha256(data) == digest
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            assert image.shape[:2] == (240, 320)
    assert len(coco["images"]) == 12 and len(coco["annotations"]) > 12
    assert {c["id"] for c in coco["categories"]} == {1, 2, 3}
    boxes = load_package_boxes(small_package)
    assert sum(len(b) for b in boxes.values()) == len(coco["annotations"])


def test_bad_names_are_refused_and_nothing_is_left(tmp_path: Path) -> None:
    from device.datasets.package import AnnotatedImage
    from device.detections import Detections

    bad = AnnotatedImage("../evil.png", b"x", 1, 1, Detections.empty())
    with pytest.raises(DatasetError, match="not allowed"):
        write_dataset_package(tmp_path / "p.zip", "p", ["a"], [bad])
    assert list(tmp_path.iterdir()) == []


def test_manifest_errors_name_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "broken.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", json.dumps({"format": "scopehive-dataset", "project": "p"}))
    with pytest.raises(DatasetError, match=r"broken.zip: manifest.json is invalid: field 'classes'"):
        read_manifest(path)
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable zip"):
        read_manifest(tmp_path / "junk.zip")


def test_package_is_readable_by_a_trainer_under_another_uid(small_package: Path) -> None:
    assert small_package.stat().st_mode & 0o777 == 0o644
