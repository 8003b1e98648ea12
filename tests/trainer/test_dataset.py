"""The package reader: every kind of broken package gets a clear error; good ones load exactly."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from trainer.dataset import DatasetError, load_dataset_package, split_dataset

Entries = dict[str, bytes]


def _read(path: Path) -> Entries:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write(path: Path, entries: Entries) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def _edit_json(entries: Entries, name: str, change: Callable[[dict], None]) -> None:
    doc = json.loads(entries[name])
    change(doc)
    entries[name] = json.dumps(doc).encode()


def _first_image(entries: Entries) -> str:
    return sorted(n for n in entries if n.startswith("images/"))[0]


def _drop_image(e: Entries) -> None:
    del e[_first_image(e)]


def _corrupt_image(e: Entries) -> None:
    name = _first_image(e)
    e[name] = b"\x89PNG this is not really an image"
    _edit_json(e, "manifest.json", lambda m: m["images"].__setitem__(name[7:], hashlib.sha256(e[name]).hexdigest()))


def _tamper_image(e: Entries) -> None:
    name = _first_image(e)
    e[name] = e[name][:-1] + bytes([e[name][-1] ^ 1])


def _set_box(index: int, bbox: list[float]) -> Callable[[Entries], None]:
    return lambda e: _edit_json(e, "annotations.json", lambda c: c["annotations"][index].__setitem__("bbox", bbox))


BAD_PACKAGES = [
    ("missing image", _drop_image, "missing from images/"),
    ("box outside image", _set_box(0, [300.0, 200.0, 80.0, 80.0]), "outside the 320x240 image"),
    ("zero-size box", _set_box(1, [10.0, 10.0, 0.0, 12.0]), "zero-size box"),
    ("unknown class", lambda e: _edit_json(e, "annotations.json", lambda c: c["annotations"][0].__setitem__("category_id", 9)), "unknown class"),
    ("corrupt image", _corrupt_image, "corrupt or not an image"),
    ("sha256 mismatch", _tamper_image, "sha256 does not match"),
    ("empty dataset", lambda e: _edit_json(e, "annotations.json", lambda c: c.update(images=[], annotations=[])), "holds no images"),
    ("no objects at all", lambda e: _edit_json(e, "annotations.json", lambda c: c.update(annotations=[])), "nothing to learn"),
    ("bad manifest", lambda e: _edit_json(e, "manifest.json", lambda m: m.update(colour="blue")), "manifest.json is invalid"),
    ("manifest missing", lambda e: e.pop("manifest.json"), "manifest.json is missing"),
    ("newer format", lambda e: _edit_json(e, "manifest.json", lambda m: m.update(format_version=7)), "update the trainer"),
    ("dangling annotation", lambda e: _edit_json(e, "annotations.json", lambda c: c["annotations"][0].__setitem__("image_id", 999)), "not in 'images'"),
]


@pytest.mark.parametrize(("case", "damage", "message"), BAD_PACKAGES, ids=[c[0] for c in BAD_PACKAGES])
def test_bad_package_is_refused_with_a_clear_message(small_package: Path, tmp_path: Path, case: str, damage: Callable[[Entries], None], message: str) -> None:
    entries = _read(small_package)
    damage(entries)
    with pytest.raises(DatasetError) as info:
        load_dataset_package(_write(tmp_path / "bad.zip", entries))
    assert message in str(info.value)
    assert "bad.zip" in str(info.value)


def test_every_problem_is_listed_at_once(small_package: Path, tmp_path: Path) -> None:
    entries = _read(small_package)
    _set_box(0, [10.0, 10.0, 0.0, 5.0])(entries)
    _drop_image(entries)
    with pytest.raises(DatasetError) as info:
        load_dataset_package(_write(tmp_path / "bad.zip", entries))
    assert "2 problem(s)" in str(info.value) and "zero-size" in str(info.value) and "missing" in str(info.value)


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "notes.zip"
    path.write_text("hello")
    with pytest.raises(DatasetError, match="not a readable zip"):
        load_dataset_package(path)


def test_good_package_loads_with_exact_boxes(small_package: Path) -> None:
    from device.datasets.package import load_package_boxes

    dataset = load_dataset_package(small_package)
    truth = load_package_boxes(small_package)
    assert dataset.classes == ["cell", "crystal", "debris"]
    assert len(dataset.samples) == 12
    for sample in dataset.samples:
        assert sample.image.shape == (240, 320, 3) and sample.image.dtype == np.uint8
        np.testing.assert_allclose(sample.boxes, truth[sample.file_name].xyxy, atol=1e-3)
        np.testing.assert_array_equal(sample.classes, truth[sample.file_name].class_ids)
    assert len(dataset.sha256) == 64


def test_16_bit_images_are_stretched_to_8_bit(small_package: Path, tmp_path: Path) -> None:
    entries = _read(small_package)
    name = _first_image(entries)
    grey = cv2.imdecode(np.frombuffer(entries[name], np.uint8), cv2.IMREAD_GRAYSCALE)
    deep = (grey.astype(np.uint16) * 16 + 1000)  # a 12-bit camera's range inside 16 bits
    ok, encoded = cv2.imencode(".tif", deep)
    assert ok
    entries[name] = encoded.tobytes()
    _edit_json(entries, "manifest.json", lambda m: m["images"].__setitem__(name[7:], hashlib.sha256(entries[name]).hexdigest()))
    sample = next(s for s in load_dataset_package(_write(tmp_path / "deep.zip", entries)).samples if s.file_name == name[7:])
    assert sample.image.dtype == np.uint8
    assert sample.image.max() >= 250 and sample.image.min() <= 5  # full 8-bit range used
    assert np.corrcoef(sample.image[..., 0].ravel(), grey.ravel())[0, 1] > 0.99


def test_split_is_seeded_and_stratified(small_package: Path) -> None:
    samples = load_dataset_package(small_package).samples
    train_a, val_a = split_dataset(samples, 0.25, seed=5)
    train_b, val_b = split_dataset(samples, 0.25, seed=5)
    assert [s.file_name for s in val_a] == [s.file_name for s in val_b]
    assert len(train_a) + len(val_a) == len(samples)
    assert not {s.file_name for s in train_a} & {s.file_name for s in val_a}
    assert 2 <= len(val_a) <= 4
    _, val_c = split_dataset(samples, 0.25, seed=6)
    assert [s.file_name for s in val_c] != [s.file_name for s in val_a]
