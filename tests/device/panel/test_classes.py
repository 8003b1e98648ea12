"""Stable class ids: removing, reordering and migrating classes never changes what a box is."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from device.panel.classes import ClassEdit
from device.panel.records import Box, PanelError
from device.panel.store import ProjectStore
from device.storage.local import LocalStorage
from tests.device.panel.conftest import Auth


@pytest.fixture
def store(tmp_path: Path) -> ProjectStore:
    return ProjectStore(LocalStorage(tmp_path / "store"))


def _image(store: ProjectStore, slug: str, class_ids: list[int]) -> str:
    meta = store.add_frame(slug, np.full((40, 60), 128, np.uint8))
    boxes = [Box(x1=1.0 + i, y1=1.0, x2=10.0 + i, y2=10.0, class_id=c) for i, c in enumerate(class_ids)]
    store.save_annotation(slug, meta.id, 0, boxes)
    return meta.id


def _names_of_boxes(store: ProjectStore, slug: str) -> list[str]:
    project = store.project(slug)
    return sorted(
        project.class_by_id(b.class_id).name  # type: ignore[union-attr]
        for m in store.list_images(slug) for b in store.annotation(slug, m.id).boxes
    )


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _edits(store: ProjectStore, slug: str, order: list[str]) -> list[ClassEdit]:
    project = store.project(slug)
    return [ClassEdit(project.id_of(n), n, "") for n in order]


def test_removing_an_unused_earlier_class_does_not_relabel_later_boxes(store: ProjectStore) -> None:
    slug = store.create_project("Blood", ["cell", "crystal", "debris"]).slug
    _image(store, slug, [1, 2, 2])  # crystal, debris, debris
    store.set_classes(slug, _edits(store, slug, ["crystal", "debris"]))  # "cell" removed (unused)
    assert _names_of_boxes(store, slug) == ["crystal", "debris", "debris"]
    added = store.add_classes(slug, ["fibre"])
    assert added.class_by_id(0) is None and added.id_of("fibre") == 3  # ids are never reused


def test_reordering_classes_keeps_every_box_and_exports_follow(store: ProjectStore) -> None:
    from device.datasets.formats import export_archive
    from device.panel.datasets import annotated_images

    slug = store.create_project("Blood", ["cell", "crystal", "debris"]).slug
    _image(store, slug, [0, 2])
    project = store.set_classes(slug, _edits(store, slug, ["debris", "cell", "crystal"]))
    assert _names_of_boxes(store, slug) == ["cell", "debris"]
    archive = zipfile.ZipFile(io.BytesIO(export_archive("yolo", annotated_images(store, project), project.class_names)))
    names = archive.read("classes.txt").decode().split()
    label = next(n for n in archive.namelist() if n.startswith("labels/"))
    exported = sorted(names[int(line.split()[0])] for line in archive.read(label).decode().splitlines())
    assert names == ["debris", "cell", "crystal"] and exported == ["cell", "debris"]
    coco = zipfile.ZipFile(io.BytesIO(export_archive("coco", annotated_images(store, project), project.class_names)))
    doc = json.loads(coco.read("annotations.json"))
    category = {c["id"]: c["name"] for c in doc["categories"]}
    assert sorted(category[a["category_id"]] for a in doc["annotations"]) == ["cell", "debris"]
    voc = zipfile.ZipFile(io.BytesIO(export_archive("voc", annotated_images(store, project), project.class_names)))
    xml = next(voc.read(n).decode() for n in voc.namelist() if n.endswith(".xml"))
    assert sorted(re.findall(r"<name>([^<]+)</name>", xml)) == ["cell", "debris"]


def test_the_dataset_package_follows_reordered_classes(store: ProjectStore, tmp_path: Path) -> None:
    from device.datasets.package import load_package_boxes, read_manifest, write_dataset_package
    from device.panel.datasets import annotated_images

    slug = store.create_project("Blood", ["cell", "crystal", "debris"]).slug
    _image(store, slug, [0, 2, 2])
    project = store.set_classes(slug, _edits(store, slug, ["debris", "crystal", "cell"]))
    path = tmp_path / "package.zip"
    write_dataset_package(path, project.name, project.class_names, annotated_images(store, project))
    classes = read_manifest(path).classes
    (boxes,) = load_package_boxes(path).values()
    assert classes == ["debris", "crystal", "cell"]
    assert sorted(classes[c] for c in boxes.class_ids.tolist()) == ["cell", "debris", "debris"]


def test_removing_a_class_in_use_is_refused_with_its_box_count_and_changes_nothing(store: ProjectStore, tmp_path: Path) -> None:
    slug = store.create_project("Blood", ["cell", "crystal", "debris"]).slug
    _image(store, slug, [2, 2])
    _image(store, slug, [0, 2])
    before = _files(tmp_path / "store")
    with pytest.raises(PanelError, match="class 'debris' is still used by 3 boxes"):
        store.set_classes(slug, _edits(store, slug, ["cell", "crystal"]))
    with pytest.raises(PanelError, match="class 'debris' is still used by 3 boxes"):
        store.remove_class(slug, 2)
    assert _files(tmp_path / "store") == before


def test_remove_with_confirmed_merge_or_delete_rewrites_boxes_with_a_new_revision(store: ProjectStore) -> None:
    slug = store.create_project("Blood", ["cell", "crystal", "debris"]).slug
    first, second = _image(store, slug, [1, 2]), _image(store, slug, [2])
    store.remove_class(slug, 2, merge_into=0)
    assert _names_of_boxes(store, slug) == ["cell", "cell", "crystal"]
    assert store.annotation(slug, first).revision == 2 and store.annotation(slug, second).revision == 2
    store.remove_class(slug, 1, delete_boxes=True)
    assert _names_of_boxes(store, slug) == ["cell", "cell"] and store.project(slug).class_names == ["cell"]
    with pytest.raises(PanelError, match="cannot merge"):
        store.remove_class(slug, 0, merge_into=0)


def test_a_project_stored_before_stable_ids_keeps_its_boxes(store: ProjectStore, tmp_path: Path) -> None:
    slug = store.create_project("Old", ["cell", "crystal"]).slug
    image = _image(store, slug, [1, 0])
    path = tmp_path / "store" / "projects" / slug / "project.json"
    old = json.loads(path.read_text())
    old["classes"] = [{"name": c["name"], "color": c["color"]} for c in old["classes"]]  # the old format: id = position
    del old["next_class_id"]
    path.write_text(json.dumps(old))
    project = store.project(slug)
    assert [(c.id, c.name) for c in project.classes] == [(0, "cell"), (1, "crystal")] and project.next_class_id == 2
    assert _names_of_boxes(store, slug) == ["cell", "crystal"]
    store.set_classes(slug, _edits(store, slug, ["crystal", "cell"]))  # the first write stores the ids
    assert [c["id"] for c in json.loads(path.read_text())["classes"]] == [1, 0]
    assert _names_of_boxes(store, slug) == ["cell", "crystal"] and store.annotation(slug, image).revision == 1


def test_the_classes_form_refuses_removal_in_use_with_400(app: Flask, auth: Auth, client: FlaskClient) -> None:
    auth.login()
    slug = auth.project(classes="cell, crystal, debris")
    image = auth.json("POST", f"/panel/api/projects/{slug}/capture", None).get_json()["image"]["id"]  # type: ignore[attr-defined]
    auth.json("PUT", f"/panel/api/projects/{slug}/images/{image}/annotation",
              {"revision": 0, "boxes": [{"x1": 1, "y1": 1, "x2": 9, "y2": 9, "class_id": 1}]})
    form = {"class_id": ["0", "1", "2"], "class_name": ["", "crystal", "debris"], "class_color": ["#000000"] * 3}
    assert auth.post(f"/panel/projects/{slug}/classes", data=form).status_code == 302  # type: ignore[attr-defined]
    doc = client.get(f"/panel/api/projects/{slug}/images/{image}/annotation").get_json()
    store: ProjectStore = app.extensions["scopehive.panel"].projects
    assert store.project(slug).class_by_id(doc["boxes"][0]["class_id"]).name == "crystal"  # type: ignore[union-attr]
    form = {"class_id": ["2"], "class_name": ["debris"], "class_color": ["#000000"]}
    page = auth.post(f"/panel/projects/{slug}/classes", data=form)
    assert page.status_code == 400 and "is still used by 1 boxes" in page.data.decode()  # type: ignore[attr-defined]
    assert store.project(slug).class_names == ["crystal", "debris"]
