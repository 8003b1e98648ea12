"""Dataset pages: every format exports and re-imports the same boxes; the package reads in the trainer."""

from __future__ import annotations

import html
import io
import zipfile
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from device.datasets.formats import FORMATS
from device.panel.store import ProjectStore
from tests.device.panel.conftest import Auth
from tests.device.zips import bomb_zip

BOXES = [
    {"x1": 10.0, "y1": 20.0, "x2": 50.0, "y2": 60.0, "class_id": 1},
    {"x1": 100.5, "y1": 30.25, "x2": 180.0, "y2": 90.0, "class_id": 0},
]


def _store(app: Flask) -> ProjectStore:
    store: ProjectStore = app.extensions["scopehive.panel"].projects
    return store


def _annotated_project(auth: Auth) -> str:
    auth.login()
    slug = auth.project("Source")
    for i in range(3):
        image = auth.json("POST", f"/panel/api/projects/{slug}/capture", None).get_json()["image"]["id"]  # type: ignore[attr-defined]
        boxes = BOXES[: i + 1] if i < 2 else []
        auth.json("PUT", f"/panel/api/projects/{slug}/images/{image}/annotation", {"revision": 0, "boxes": boxes, "negative": not boxes})
    auth.json("POST", f"/panel/api/projects/{slug}/capture", None)  # one unannotated: stays out of exports
    return slug


def _boxes_by_name(app: Flask, slug: str) -> dict[str, list[tuple[float, ...]]]:
    store = _store(app)
    out = {}
    for meta in store.list_images(slug):
        doc = store.annotation(slug, meta.id)
        if doc.annotated:
            out[meta.file_name] = sorted((b.x1, b.y1, b.x2, b.y2, b.class_id) for b in doc.boxes)
    return out


@pytest.mark.parametrize("key", sorted(FORMATS))
def test_export_then_import_gives_the_same_boxes(key: str, app: Flask, auth: Auth, client: FlaskClient) -> None:
    source = _annotated_project(auth)
    archive = client.get(f"/panel/datasets/export/{key}")
    assert archive.status_code == 200 and archive.mimetype == "application/zip"
    target = auth.project("Target", classes="cell")
    response = auth.post("/panel/datasets/import", data={"format": key, "archive": (io.BytesIO(archive.data), "in.zip")},
                         content_type="multipart/form-data", follow_redirects=True)
    assert b"Imported 3 annotated images" in response.data  # type: ignore[attr-defined]
    assert _store(app).project(target).class_names == ["cell", "crystal", "debris"]
    want, got = _boxes_by_name(app, source), _boxes_by_name(app, target)
    assert sorted(want) == sorted(got)
    for name in want:
        assert len(got[name]) == len(want[name])
        for g, w in zip(got[name], want[name], strict=True):
            assert g == pytest.approx(w, abs=0.01)


def test_bad_import_reports_every_file_and_saves_nothing(app: Flask, auth: Auth, client: FlaskClient) -> None:
    _annotated_project(auth)
    archive = zipfile.ZipFile(io.BytesIO(client.get("/panel/datasets/export/yolo").data))
    files = {n: archive.read(n) for n in archive.namelist()}
    first, second = sorted(n for n in files if n.startswith("labels/"))[:2]
    files[first] = b"0 0.5 0.5 2.0 0.1\n"
    files[second.replace("labels/", "images/").replace(".txt", ".png")] = b"GIF89a not what we take"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name, data in files.items():
            out.writestr(name, data)
    target = auth.project("Target", classes="other")
    response = auth.post("/panel/datasets/import", data={"format": "yolo", "archive": (io.BytesIO(buffer.getvalue()), "bad.zip")},
                         content_type="multipart/form-data", follow_redirects=True)
    text = response.data.decode()  # type: ignore[attr-defined]
    assert "Nothing was imported from bad.zip" in text
    assert f"{first} line 1" in text and "not a PNG, JPEG or TIFF" in text
    assert _store(app).list_images(target) == [] and _store(app).project(target).class_names == ["other"]


def test_zip_slip_import_is_refused(app: Flask, auth: Auth) -> None:
    auth.login()
    target = auth.project("Target")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        out.writestr("../../../tmp/evil.png", b"x")
    response = auth.post("/panel/datasets/import", data={"format": "coco", "archive": (io.BytesIO(buffer.getvalue()), "slip.zip")},
                         content_type="multipart/form-data", follow_redirects=True)
    assert b"would escape its folder" in response.data  # type: ignore[attr-defined]
    assert _store(app).list_images(target) == []


def test_package_export_is_what_the_trainer_reads(app: Flask, auth: Auth, client: FlaskClient, tmp_path: Path) -> None:
    slug = _annotated_project(auth)
    response = client.get("/panel/datasets/package")
    assert response.status_code == 200
    path = tmp_path / "package.zip"
    path.write_bytes(response.data)
    from trainer.dataset import load_dataset_package

    dataset = load_dataset_package(path)
    assert dataset.project == "Source" and dataset.classes == ["cell", "crystal", "debris"]
    assert len(dataset.samples) == 3
    from device.datasets.package import read_manifest

    manifest = read_manifest(path)
    assert sorted(manifest.acquisition) == sorted(manifest.images), "every captured image says how it was taken"
    config = app.config["SCOPEHIVE"]
    for record in manifest.acquisition.values():
        assert record["device"] == config.device_name and record["um_per_pixel"] == config.um_per_pixel
        assert record["source"] == config.source and record["captured_at"]
    want = _boxes_by_name(app, slug)
    from device.datasets.package import load_package_boxes

    for name, boxes in load_package_boxes(path).items():
        got = sorted((*map(float, b), int(c)) for b, c in zip(boxes.xyxy.tolist(), boxes.class_ids.tolist(), strict=True))
        assert len(got) == len(want[name])
        for g, w in zip(got, want[name], strict=True):
            assert g == pytest.approx(w, abs=0.01)


def _store_files(app: Flask) -> dict[str, bytes]:
    root = Path(_store(app).storage.root)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_zip_bomb_import_is_refused_with_400_and_stores_nothing(app: Flask, auth: Auth, client: FlaskClient) -> None:
    source = _annotated_project(auth)
    coco = zipfile.ZipFile(io.BytesIO(client.get("/panel/datasets/export/coco").data))
    files = {n: coco.read(n) for n in coco.namelist()}
    bomb = bomb_zip({"images/bomb.png": 300 << 20}, files)  # one entry inflating to 300 MB; the upload limit is 5 MB
    assert len(bomb) < 2 << 20
    before = _store_files(app)
    response = auth.post("/panel/datasets/import", data={"format": "coco", "archive": (io.BytesIO(bomb), "bomb.zip")},
                         content_type="multipart/form-data")
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "the limit for one file: the archive is refused" in html.unescape(response.data.decode())  # type: ignore[attr-defined]
    assert _store_files(app) == before and _store(app).project(source).class_names == ["cell", "crystal", "debris"]
    workdir = app.extensions["scopehive.panel"].data_dir / "cache" / "tmp"
    assert not any(workdir.iterdir())


def test_entries_a_format_does_not_use_are_skipped_unread(app: Flask, auth: Auth, client: FlaskClient) -> None:
    _annotated_project(auth)
    coco = zipfile.ZipFile(io.BytesIO(client.get("/panel/datasets/export/coco").data))
    files = {n: coco.read(n) for n in coco.namelist()}
    archive = bomb_zip({"raw/stack.bin": 300 << 20, "labels/x.xml": 300 << 20}, files)
    target = auth.project("Target", classes="cell")
    response = auth.post("/panel/datasets/import", data={"format": "coco", "archive": (io.BytesIO(archive), "in.zip")},
                         content_type="multipart/form-data", follow_redirects=True)
    assert b"Imported 3 annotated images" in response.data  # type: ignore[attr-defined]
    assert len(_store(app).list_images(target)) == 3
