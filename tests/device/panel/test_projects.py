"""Projects and classes, and the live page's JSON."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from device.panel.store import ProjectStore
from tests.device.panel.conftest import PASSWORD, Auth, make_app
from tests.device.panel.helpers import SyntheticRuntime, bundle_zip


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
        "class_id": ["0", "1"], "class_name": ["cell", "crystal"], "class_color": ["#112233", "#445566"], "new_class": "debris"})
    project = _store(app).project(slug)
    assert project.class_names == ["cell", "crystal", "debris"] and project.classes[0].color == "#112233"
    image = auth.json("POST", f"/panel/api/projects/{slug}/capture", None).get_json()["image"]["id"]  # type: ignore[attr-defined]
    auth.json("PUT", f"/panel/api/projects/{slug}/images/{image}/annotation",
              {"revision": 0, "boxes": [{"x1": 1, "y1": 1, "x2": 9, "y2": 9, "class_id": 2}]})
    page = auth.post(f"/panel/projects/{slug}/classes", data={
        "class_id": ["0", "1"], "class_name": ["cell", "crystal"], "class_color": ["#112233", "#445566"]}, follow_redirects=True)
    assert "class 'debris' is still used by 1 boxes" in html.unescape(page.data.decode())  # type: ignore[attr-defined]
    assert _store(app).project(slug).class_names == ["cell", "crystal", "debris"]
    page = auth.post("/panel/projects/", data={"name": "Dupes", "classes": "a, a"}, follow_redirects=True)
    assert "class names must be unique" in page.data.decode()  # type: ignore[attr-defined]


def test_live_page_data(auth: Auth, client: FlaskClient) -> None:
    auth.login()
    assert client.get("/panel/api/live/stats").get_json()["fps"] == 10.0
    history = client.get("/panel/api/live/history?seconds=60").get_json()
    assert history["seconds"] == 60 and len(history["points"]) == 30 and "fps" in history["points"][0]


def test_blank_classes_are_refused_and_the_add_box_takes_a_comma_list(app: Flask, auth: Auth, client: FlaskClient) -> None:
    auth.login()
    page = auth.post("/panel/projects/", data={"name": "No classes", "classes": " , "}, follow_redirects=True)
    assert "at least one class" in page.data.decode()  # type: ignore[attr-defined]
    assert _store(app).list_projects() == []
    slug = auth.project(classes="cell")
    auth.post(f"/panel/projects/{slug}/classes", data={"class_id": ["0"], "class_name": ["cell"], "class_color": ["#3cc83c"], "new_class": "crystal, debris"})
    assert _store(app).project(slug).class_names == ["cell", "crystal", "debris"]


def test_the_current_project_survives_logging_out_and_in(app: Flask, auth: Auth, client: FlaskClient) -> None:
    auth.login()
    auth.project("First")
    second = auth.project("Second")
    client.post("/panel/logout", data={"csrf_token": auth.token()})
    auth.login()
    assert 'id="current-project">Second<' in client.get("/panel/projects/").data.decode()
    with client.session_transaction() as session:
        session.pop("project", None)
    assert 'id="current-project">Second<' in client.get("/panel/capture").data.decode()
    assert second == "second"


def test_deleting_a_project_takes_its_images_and_says_so(app: Flask, auth: Auth, client: FlaskClient) -> None:
    auth.login()
    keep = auth.project("Keep")
    slug = auth.project("Gone")
    for _ in range(2):
        auth.json("POST", f"/panel/api/projects/{slug}/capture", None)
    page = client.get("/panel/projects/").data.decode()
    assert "Delete project &#39;Gone&#39; with 2 images (0 annotated) and 0 model bundles?" in page
    done = auth.post(f"/panel/projects/{slug}/delete", follow_redirects=True)
    assert "Deleted project &#39;Gone&#39; with 2 images" in done.data.decode()  # type: ignore[attr-defined]
    assert [p.slug for p in _store(app).list_projects()] == [keep]
    assert _store(app).storage.list(f"projects/{slug}/") == []
    assert "no project chosen" in client.get("/panel/projects/").data.decode()


def test_pages_answer_with_and_without_a_trailing_slash_and_the_icon(auth: Auth, client: FlaskClient) -> None:
    assert client.get("/favicon.ico").status_code == 200
    auth.login()
    auth.project()
    for path in ("/panel/capture", "/panel/capture/", "/panel/annotate/", "/panel/live/", "/panel/projects"):
        assert client.get(path).status_code == 200, path


def test_first_start_with_a_model_creates_one_demo_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
    runtime = SyntheticRuntime(tmp_path / "cache")
    runtime.switch_model(bundle_zip(tmp_path / "b.zip", name="blood", classes=["cell", "crystal", "debris"]))
    app = make_app(tmp_path / "data", runtime)
    projects = _store(app).list_projects()
    assert [(p.name, p.class_names) for p in projects] == [("Demo (blood model)", ["cell", "crystal", "debris"])]
    assert runtime.colours == {c.name: c.color for c in projects[0].classes}, "the stream draws the project's colours"
    with app.test_client() as client:
        auth = Auth(client)
        auth.login()
        assert 'id="current-project">Demo (blood model)<' in client.get("/panel/projects/").data.decode()
        auth.post(f"/panel/projects/{projects[0].slug}/delete")
    again = make_app(tmp_path / "data", runtime)  # a restart after deleting it: it stays deleted
    assert _store(again).list_projects() == []


def _store_files(app: Flask) -> dict[str, bytes]:
    root = Path(app.extensions["scopehive.panel"].projects.storage.root)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("url", "form", "message"),
    [
        ("/panel/projects/blood/rename", {"name": "x" * 5000}, "has 5000 characters: at most 100"),
        ("/panel/projects/", {"name": "n" * 10_000, "classes": "cell"}, "has 10000 characters: at most 100"),
        ("/panel/projects/blood/rename", {"name": "Blood\x00"}, "control character U+0000"),
        ("/panel/projects/", {"name": "a\u202etxt.exe", "classes": ""}, "control character U+202E"),
        ("/panel/projects/", {"name": "ok", "classes": "cell, de\x00bris"}, "control character U+0000"),
        ("/panel/projects/", {"name": "ok", "classes": "c" * 65}, "has 65 characters: at most 64"),
        ("/panel/projects/blood/classes", {"class_id": "0", "class_name": "ce\nll", "class_color": "#000000"}, "control character U+000A"),
        ("/panel/projects/blood/classes", {"class_id": "0", "class_name": "cell", "class_color": "red"}, "not a #rrggbb colour"),
        ("/panel/projects/blood/classes", {"class_id": "x", "class_name": "cell", "class_color": "#000000"}, "class id is not a number"),
        ("/panel/projects/blood/classes", {"class_id": "7", "class_name": "cell", "class_color": "#000000"}, "class id 7 is not in project"),
        ("/panel/projects/blood/classes", {"new_class": "a, b\x00", "class_id": "0", "class_name": "cell", "class_color": "#000000"}, "control character U+0000"),
    ],
)
def test_bad_names_are_400_with_a_message_and_change_nothing(app: Flask, auth: Auth, url: str, form: dict[str, str], message: str) -> None:
    auth.login()
    auth.project("Blood", classes="cell")
    before = _store_files(app)
    response = auth.post(url, data=form)
    assert response.status_code == 400 and message in html.unescape(response.data.decode())  # type: ignore[attr-defined]
    assert _store_files(app) == before


def test_a_project_stored_with_a_5000_character_name_keeps_every_page_working(app: Flask, auth: Auth, client: FlaskClient) -> None:
    auth.login()
    slug = auth.project("Blood", classes="cell")
    storage = _store(app).storage
    raw = json.loads(storage.get(f"projects/{slug}/project.json"))
    raw["name"] = "\x00" + "y" * 5000  # what the old rename stored without checking
    raw["classes"][0]["name"] = "ce\x00ll"
    storage.put(f"projects/{slug}/project.json", json.dumps(raw).encode())
    page = client.get("/panel/projects/")
    assert page.status_code == 200 and "y" * 90 in page.data.decode() and "y" * 101 not in page.data.decode()
    for path in ("/panel/annotate", "/panel/datasets/", "/panel/capture", "/panel/models/"):
        assert client.get(path).status_code == 200, path
    assert auth.post(f"/panel/projects/{slug}/switch").status_code == 302  # type: ignore[attr-defined]
    assert auth.post(f"/panel/projects/{slug}/rename", data={"name": "Blood again"}).status_code == 302  # type: ignore[attr-defined]
    assert _store(app).project(slug).name == "Blood again"


def test_removing_a_class_in_use_from_the_page_says_how_many_boxes_go(app: Flask, auth: Auth, client: FlaskClient) -> None:
    auth.login()
    slug = auth.project(classes="cell, crystal")
    image = auth.json("POST", f"/panel/api/projects/{slug}/capture", None).get_json()["image"]["id"]  # type: ignore[attr-defined]
    box = {"x1": 1, "y1": 1, "x2": 9, "y2": 9, "class_id": 1}
    auth.json("PUT", f"/panel/api/projects/{slug}/images/{image}/annotation", {"revision": 0, "boxes": [box, box]})
    page = html.unescape(client.get("/panel/projects/").data.decode())
    assert "Remove class 'crystal' and delete its 2 boxes?" in page and "Remove class 'cell'? No box uses it." in page
    refused = auth.post(f"/panel/projects/{slug}/classes/1/remove", data={"boxes": ""})
    assert refused.status_code == 400 and "still used by 2 boxes" in html.unescape(refused.data.decode())  # type: ignore[attr-defined]
    done = auth.post(f"/panel/projects/{slug}/classes/1/remove", data={"boxes": "delete"}, follow_redirects=True)
    assert "Removed class 'crystal' and its 2 boxes." in html.unescape(done.data.decode())  # type: ignore[attr-defined]
    assert _store(app).project(slug).class_names == ["cell"] and _store(app).annotation(slug, image).boxes == []


def test_panel_address_of_the_readme_opens_the_panel(client: FlaskClient) -> None:
    for url in ("/panel/", "/panel"):
        response = client.get(url)
        assert response.status_code in (301, 302, 308), url
        assert client.get(url, follow_redirects=True).status_code == 200
