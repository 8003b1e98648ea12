"""Annotation saves: immediate, revision-numbered, conflict-detected, and kept across restarts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.device.panel.conftest import Auth, make_app
from tests.device.panel.helpers import SyntheticRuntime, bundle_zip


def _captured(auth: Auth, count: int = 1) -> tuple[str, list[str]]:
    auth.login()
    slug = auth.project()
    ids = [auth.json("POST", f"/panel/api/projects/{slug}/capture", None).get_json()["image"]["id"] for _ in range(count)]  # type: ignore[attr-defined]
    return slug, ids


BOX = {"x1": 10, "y1": 20, "x2": 50, "y2": 60, "class_id": 1}


def test_saves_survive_a_restart_between_two_edits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime: SyntheticRuntime) -> None:
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", "correct horse battery")
    first = make_app(tmp_path, runtime)
    with first.test_client() as client:
        auth = Auth(client)
        slug, (image,) = _captured(auth)
        url = f"/panel/api/projects/{slug}/images/{image}/annotation"
        assert auth.json("PUT", url, {"revision": 0, "boxes": [BOX]}).status_code == 200  # type: ignore[attr-defined]
    second = make_app(tmp_path, runtime)  # a new process would see exactly this
    with second.test_client() as client:
        auth = Auth(client)
        auth.login()
        doc = client.get(url).get_json()
        assert doc["revision"] == 1 and doc["boxes"] == [{**BOX, "x1": 10.0, "y1": 20.0, "x2": 50.0, "y2": 60.0}]
        moved = {**BOX, "x1": 12, "x2": 52}
        assert auth.json("PUT", url, {"revision": 1, "boxes": [BOX, moved]}).status_code == 200  # type: ignore[attr-defined]
        assert len(client.get(url).get_json()["boxes"]) == 2


def test_a_stale_tab_gets_409_and_nothing_is_overwritten(auth: Auth, client: FlaskClient) -> None:
    slug, (image,) = _captured(auth)
    url = f"/panel/api/projects/{slug}/images/{image}/annotation"
    assert auth.json("PUT", url, {"revision": 0, "boxes": [BOX]}).status_code == 200  # type: ignore[attr-defined]
    stale = auth.json("PUT", url, {"revision": 0, "boxes": []})  # a second tab that loaded revision 0
    assert stale.status_code == 409  # type: ignore[attr-defined]
    body = stale.get_json()  # type: ignore[attr-defined]
    assert "changed elsewhere" in body["error"] and body["current"]["revision"] == 1
    assert client.get(url).get_json()["boxes"][0]["class_id"] == 1


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ({"x1": 10, "y1": 10, "x2": 5, "y2": 20, "class_id": 0}, "empty or outside"),
        ({"x1": 0, "y1": 0, "x2": 5000, "y2": 20, "class_id": 0}, "outside the 320x240"),
        ({"x1": 0, "y1": 0, "x2": 5, "y2": 5, "class_id": 9}, "class id 9 does not exist"),
    ],
)
def test_invalid_boxes_are_refused(auth: Auth, client: FlaskClient, box: dict[str, int], message: str) -> None:
    slug, (image,) = _captured(auth)
    url = f"/panel/api/projects/{slug}/images/{image}/annotation"
    response = auth.json("PUT", url, {"revision": 0, "boxes": [box]})
    assert response.status_code == 400 and message in response.get_json()["error"]  # type: ignore[attr-defined]
    assert client.get(url).get_json()["revision"] == 0


def test_progress_and_negatives(app: Flask, auth: Auth, client: FlaskClient) -> None:
    slug, ids = _captured(auth, 3)
    auth.json("PUT", f"/panel/api/projects/{slug}/images/{ids[0]}/annotation", {"revision": 0, "boxes": [BOX]})
    auth.json("PUT", f"/panel/api/projects/{slug}/images/{ids[1]}/annotation", {"revision": 0, "boxes": [], "negative": True})
    assert app.extensions["scopehive.panel"].projects.progress(slug) == (2, 3)
    assert "3 images · 2 annotated" in client.get("/panel/projects/").get_data(as_text=True)


def test_preannotate_proposes_boxes_from_the_running_model(auth: Auth, client: FlaskClient, tmp_path: Path) -> None:
    slug, (image,) = _captured(auth)
    url = f"/panel/api/projects/{slug}/images/{image}/preannotate"
    assert auth.json("POST", url, None).status_code == 503  # type: ignore[attr-defined]
    auth.post("/panel/models/", data={"bundle": (bundle_zip(tmp_path / "b.zip").open("rb"), "b.zip")}, content_type="multipart/form-data")
    (model_id,) = [line.split("/")[3] for line in client.get("/panel/models/").data.decode().split('action="') if "/activate" in line.split('"')[0]]
    auth.post(f"/panel/models/{model_id}/activate")
    response = auth.json("POST", url, None)
    body = response.get_json()  # type: ignore[attr-defined]
    assert response.status_code == 200 and body["model"] == "tiny:1"  # type: ignore[attr-defined]
    assert len(body["proposals"]) == 1 and body["proposals"][0]["class_id"] == 0
    assert body["proposals"][0]["x2"] > body["proposals"][0]["x1"]


@pytest.mark.parametrize("path", ["/panel/api/projects/../images/0123456789ab/annotation",
                                  "/panel/api/projects/%2e%2e/images/0123456789ab/display.jpg",
                                  "/panel/api/projects/blood/images/..%5C..%5Cetc/original"])
def test_odd_names_in_urls_are_404_not_errors(auth: Auth, client: FlaskClient, path: str) -> None:
    _captured(auth)
    response = client.get(path)
    assert response.status_code == 404


def _raw_put(auth: Auth, url: str, body: str) -> object:
    """The request exactly as an attacker types it (NaN is not JSON, but Python's parser takes it)."""
    return auth.client.open(url, method="PUT", data=body, content_type="application/json", headers={"X-CSRF-Token": auth.token()})


@pytest.mark.parametrize(
    ("boxes", "message"),
    [
        # NaN/Infinity are not JSON: refused by the parser (device/jsonsafe.py) before any box is read
        ('[{"x1": NaN, "y1": 1, "x2": 5, "y2": 5, "class_id": 0}]', "'NaN' is not a JSON value"),
        ('[{"x1": 1, "y1": -Infinity, "x2": 5, "y2": 5, "class_id": 0}]', "'-Infinity' is not a JSON value"),
        ('[{"x1": 1, "y1": 1, "x2": Infinity, "y2": 5, "class_id": 0}]', "'Infinity' is not a JSON value"),
        ('[{"x1": 1, "y1": 1, "x2": 1e309, "y2": 5, "class_id": 0}]', "too large for a 64-bit float"),
        ('[{"x1": "1", "y1": 1, "x2": 5, "y2": 5, "class_id": 0}]', "x1: Input should be a valid number"),
        ('[{"x1": 1, "y1": 1, "x2": 5, "y2": 5, "class_id": true}]', "class_id: Input should be a valid integer"),
        ('[{"x1": 1, "y1": 1, "x2": 5, "y2": 5}]', "class_id: Field required"),
        ("[5]", "box 1 is invalid"),
        ("5", "'boxes' must be a list"),
        ('{"x1": 1}', "'boxes' must be a list"),
        ("[" + ",".join(['{"x1": 1, "y1": 1, "x2": 5, "y2": 5, "class_id": 0}'] * 20_000) + "]", "20000 boxes in one image is more than the limit of 10000"),
    ],
)
def test_malformed_boxes_are_400_and_change_nothing(auth: Auth, client: FlaskClient, boxes: str, message: str) -> None:
    slug, (image,) = _captured(auth)
    url = f"/panel/api/projects/{slug}/images/{image}/annotation"
    assert auth.json("PUT", url, {"revision": 0, "boxes": [BOX]}).status_code == 200  # type: ignore[attr-defined]
    before = client.get(url).get_json()
    response = _raw_put(auth, url, '{"revision": 1, "boxes": ' + boxes + "}")
    assert response.status_code == 400 and message in response.get_json()["error"]  # type: ignore[attr-defined]
    assert client.get(url).get_json() == before
    assert client.get("/panel/datasets/export/coco").status_code == 200


def test_ten_thousand_boxes_are_accepted(auth: Auth, client: FlaskClient) -> None:
    slug, (image,) = _captured(auth)
    boxes = [{"x1": i % 300, "y1": i // 300 % 200, "x2": i % 300 + 2, "y2": i // 300 % 200 + 2, "class_id": 0} for i in range(10_000)]
    response = auth.json("PUT", f"/panel/api/projects/{slug}/images/{image}/annotation", {"revision": 0, "boxes": boxes})
    assert response.status_code == 200 and len(response.get_json()["boxes"]) == 10_000  # type: ignore[attr-defined]


def test_a_nan_box_stored_by_old_versions_does_not_break_the_project(app: Flask, auth: Auth, client: FlaskClient) -> None:
    slug, (image,) = _captured(auth)
    url = f"/panel/api/projects/{slug}/images/{image}/annotation"
    store = app.extensions["scopehive.panel"].projects.storage
    bad = {"revision": 3, "boxes": [{"x1": float("nan"), "y1": 1, "x2": 5, "y2": 5, "class_id": 0}, BOX], "negative": False}
    store.put(f"projects/{slug}/annotations/{image}.json", json.dumps(bad).encode())  # what the old code stored
    doc = client.get(url).get_json()
    assert doc["revision"] == 3 and doc["boxes"] == [BOX]
    for path in ("/panel/datasets/export/coco", "/panel/datasets/export/yolo", "/panel/datasets/package", "/panel/annotate"):
        assert client.get(path).status_code == 200, path


def test_preannotate_on_an_annotated_image_proposes_no_box_twice(auth: Auth, client: FlaskClient, tmp_path: Path) -> None:
    """Pre-annotate, accept everything, pre-annotate again: the image keeps one box per object."""
    slug, (image,) = _captured(auth)
    auth.post("/panel/models/", data={"bundle": (bundle_zip(tmp_path / "b.zip").open("rb"), "b.zip")}, content_type="multipart/form-data")
    (model_id,) = [line.split("/")[3] for line in client.get("/panel/models/").data.decode().split('action="') if "/activate" in line.split('"')[0]]
    auth.post(f"/panel/models/{model_id}/activate")
    url = f"/panel/api/projects/{slug}/images/{image}"
    first = auth.json("POST", f"{url}/preannotate", None).get_json()  # type: ignore[attr-defined]
    assert len(first["proposals"]) == 1 and first["already_annotated"] == 0
    boxes = [{k: p[k] for k in ("x1", "y1", "x2", "y2", "class_id")} for p in first["proposals"]]
    other_class = {**boxes[0], "class_id": 1}  # the same place in another class is not the same box
    assert auth.json("PUT", f"{url}/annotation", {"revision": 0, "boxes": [other_class]}).status_code == 200  # type: ignore[attr-defined]
    assert len(auth.json("POST", f"{url}/preannotate", None).get_json()["proposals"]) == 1  # type: ignore[attr-defined]
    nudged = {**boxes[0], "x1": boxes[0]["x1"] + 1, "x2": boxes[0]["x2"] + 1}  # accepted, then moved a pixel
    assert auth.json("PUT", f"{url}/annotation", {"revision": 1, "boxes": [nudged]}).status_code == 200  # type: ignore[attr-defined]
    again = auth.json("POST", f"{url}/preannotate", None).get_json()  # type: ignore[attr-defined]
    assert again["proposals"] == [] and again["already_annotated"] == 1


@pytest.mark.parametrize(("existing", "proposed", "kept"), [
    ([], [(0, 0, 10, 10, 0)], 1),
    ([(0, 0, 10, 10, 0)], [(0, 0, 10, 10, 0)], 0),  # exactly on top
    ([(0, 0, 10, 10, 0)], [(2, 0, 12, 10, 0)], 0),  # IoU 0.67
    ([(0, 0, 10, 10, 0)], [(5, 0, 15, 10, 0)], 1),  # IoU 0.33: a neighbour, not the same cell
    ([(0, 0, 10, 10, 1)], [(0, 0, 10, 10, 0)], 1),  # another class
])
def test_new_proposals_leaves_out_boxes_already_there(existing: list[tuple[float, ...]], proposed: list[tuple[float, ...]], kept: int) -> None:
    from device.panel.annotate import new_proposals

    def as_dicts(rows: list[tuple[float, ...]]) -> list[dict[str, float]]:
        return [dict(zip(("x1", "y1", "x2", "y2", "class_id"), r, strict=True)) for r in rows]

    assert len(new_proposals(as_dicts(proposed), as_dicts(existing))) == kept
