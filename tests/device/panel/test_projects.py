"""Projects and classes, and the live page's JSON."""

from __future__ import annotations

import html

from flask import Flask
from flask.testing import FlaskClient

from device.panel.store import ProjectStore
from tests.device.panel.conftest import Auth


def _store(app: Flask) -> ProjectStore:
    store: ProjectStore = app.extensions["scopehive.panel"].projects
    return store


def test_create_rename_switch(app: Flask, auth: Auth, client: FlaskClient) -> None:
    auth.login()
    first = auth.project("Blood smear")
    second = auth.project("Blood smear")  # same name twice: a distinct project
    assert first == "blood-smear" and second == "blood-smear-2"
    auth.post(f"/panel/projects/{first}/rename", data={"name": "Blood, day 2"})
    auth.post(f"/panel/projects/{first}/switch")
    page = html.unescape(client.get("/panel/projects/").data.decode())
    assert 'id="current-project">Blood, day 2<' in page
    assert [p.name for p in _store(app).list_projects()] == ["Blood smear", "Blood, day 2"]
    assert _store(app).project(first).slug == first  # storage name is stable across renames


def test_classes_with_colours_and_protection(app: Flask, auth: Auth, client: FlaskClient) -> None:
    auth.login()
    slug = auth.project(classes="cell, crystal")
    auth.post(f"/panel/projects/{slug}/classes", data={
        "class_name": ["cell", "crystal"], "class_color": ["#112233", "#445566"], "new_class": "debris"})
    project = _store(app).project(slug)
    assert project.class_names == ["cell", "crystal", "debris"] and project.classes[0].color == "#112233"
    image = auth.json("POST", f"/panel/api/projects/{slug}/capture", None).get_json()["image"]["id"]  # type: ignore[attr-defined]
    auth.json("PUT", f"/panel/api/projects/{slug}/images/{image}/annotation",
              {"revision": 0, "boxes": [{"x1": 1, "y1": 1, "x2": 9, "y2": 9, "class_id": 2}]})
    page = auth.post(f"/panel/projects/{slug}/classes", data={"class_name": ["cell", "crystal"], "class_color": ["#112233", "#445566"]},
                     follow_redirects=True)
    assert "class 'debris' is still used by boxes" in html.unescape(page.data.decode())  # type: ignore[attr-defined]
    assert _store(app).project(slug).class_names == ["cell", "crystal", "debris"]
    page = auth.post("/panel/projects/", data={"name": "Dupes", "classes": "a, a"}, follow_redirects=True)
    assert "class names must be unique" in page.data.decode()  # type: ignore[attr-defined]


def test_live_page_data(auth: Auth, client: FlaskClient) -> None:
    auth.login()
    assert client.get("/panel/api/live/stats").get_json()["fps"] == 10.0
    history = client.get("/panel/api/live/history?seconds=60").get_json()
    assert history["seconds"] == 60 and len(history["points"]) == 30 and "fps" in history["points"][0]
