"""The review inbox in the panel: the queue page, accept (with the model's boxes into the project), fix, skip."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from device.inbox.settings import InboxSettings
from device.inbox.store import InboxStore
from device.inbox.watch import Inbox
from device.metrics.points import Point
from tests.device.inbox.test_inbox import CARD, analysis, frame, scene
from tests.device.panel.conftest import Auth
from tests.device.panel.helpers import SyntheticRuntime


@pytest.fixture
def inbox(runtime: SyntheticRuntime, tmp_path: Path) -> Inbox:
    """Three frames the models disagreed on, as the running device would have kept them."""
    kept = Inbox(InboxSettings(spot_share=0.0, min_interval_s=0.0), InboxStore(tmp_path / "inbox", 50, 10**9))
    for i in range(3):
        kept.consider(frame(scene(i), i), [analysis(10), analysis(20, "beside")], now=float(i))
    runtime.inbox = lambda: kept  # type: ignore[attr-defined]
    return kept


def login(client: FlaskClient) -> tuple[Auth, str]:
    auth = Auth(client)
    auth.login()
    return auth, auth.project(classes="cell, crystal")


def test_the_queue_shows_each_frame_with_its_reason(client: FlaskClient, inbox: Inbox) -> None:
    login(client)
    page = client.get("/panel/inbox").get_data(as_text=True)
    assert page.count('class="card inbox-item"') == 3 and "main counted 10, beside counted 20" in page
    first = inbox.store.items()[0].id
    shown = client.get(f"/panel/inbox/{first}/image.jpg")
    assert shown.status_code == 200 and shown.mimetype == "image/jpeg"
    listing = client.get("/panel/api/inbox").get_json()
    assert listing["frames"] == 3 and listing["items"][0]["reasons"][0]["kind"] == "disagree"


def test_three_reviewed_frames_join_the_project_with_their_boxes(client: FlaskClient, inbox: Inbox) -> None:
    auth, slug = login(client)
    ids = [i.id for i in inbox.store.items()]
    answer = auth.json("POST", f"/panel/api/projects/{slug}/inbox/{ids[0]}/accept", {})
    assert answer.status_code == 201, answer.get_json()  # type: ignore[attr-defined]
    body = answer.get_json()  # type: ignore[attr-defined]
    assert body["boxes"] == 10 and body["dropped"] == 0
    beside = auth.json("POST", f"/panel/api/projects/{slug}/inbox/{ids[1]}/accept", {"model": "beside"}).get_json()  # type: ignore[attr-defined]
    assert beside["boxes"] == 20
    fixed = auth.post(f"/panel/inbox/{ids[2]}/review", data={"action": "fix"})
    assert fixed.status_code == 302 and "/panel/annotate?image=" in fixed.headers["Location"]  # type: ignore[attr-defined]
    store = client.application.extensions["scopehive.panel"].projects
    metas = store.list_images(slug)
    assert len(metas) == 3 and all(m.source == "inbox" for m in metas)
    counts = sorted(len(store.annotation(slug, m.id).boxes) for m in metas)
    assert counts == [10, 10, 20]
    cell = next(c.id for c in store.project(slug).classes if c.name == CARD.classes[0])
    first = store.annotation(slug, body["image"]["id"]).boxes[0]
    assert (first.x1, first.y1, first.x2, first.y2, first.class_id) == (0.0, 5.0, 8.0, 13.0, cell)
    assert inbox.store.items() == [] and list((inbox.store.folder).iterdir()) == []  # reviewed frames leave the inbox


def test_skip_drops_the_frame_and_nothing_joins(client: FlaskClient, inbox: Inbox) -> None:
    auth, slug = login(client)
    item = inbox.store.items()[0].id
    assert auth.json("POST", f"/panel/api/inbox/{item}/skip", {}).get_json()["left"] == 2  # type: ignore[attr-defined]
    assert auth.json("POST", f"/panel/api/projects/{slug}/inbox/{item}/accept", {}).status_code == 404  # type: ignore[attr-defined]
    assert client.application.extensions["scopehive.panel"].projects.list_images(slug) == []
    assert not any(p.stem == item for p in inbox.store.folder.iterdir())


def test_without_an_inbox_the_page_says_so(client: FlaskClient) -> None:
    login(client)
    assert "No review inbox" in client.get("/panel/inbox").get_data(as_text=True)
    assert client.get("/panel/api/inbox").status_code == 503


@pytest.fixture
def spot_inbox(runtime: SyntheticRuntime, tmp_path: Path) -> tuple[Inbox, list[Point]]:
    """Three spot checks (the random draw always falls under the share) on which the model counted 10 cells."""
    written: list[Point] = []
    kept = Inbox(InboxSettings(min_interval_s=0.0), InboxStore(tmp_path / "inbox", 50, 10**9), written.extend,
                 lambda: {"device": "scope-1", "project": "p"})
    kept._random.random = lambda: 0.0  # type: ignore[method-assign]
    for i in range(3):
        assert [r.kind for r in kept.consider(frame(scene(i), i), [analysis(10)], now=float(i))] == ["spot_check"]
    runtime.inbox = lambda: kept  # type: ignore[attr-defined]
    return kept, written


def test_reviewed_spot_checks_give_count_qc_on_the_models_page_and_as_points(
        client: FlaskClient, spot_inbox: tuple[Inbox, list[Point]]) -> None:
    inbox, written = spot_inbox
    auth, slug = login(client)
    page = client.get("/panel/models/").get_data(as_text=True)
    assert "not checked yet" in page and "100 %" not in page  # nothing reviewed: no score at all
    ids = [i.id for i in inbox.store.items()]
    images = [auth.json("POST", f"/panel/api/projects/{slug}/inbox/{i}/accept", {}).get_json()["image"]["id"]  # type: ignore[attr-defined]
              for i in ids]
    store = client.application.extensions["scopehive.panel"].projects
    assert all(store.image(slug, i).spot_check is not None for i in images)
    # The person fixes the third: 8 cells where the model counted 10.
    doc = store.annotation(slug, images[2])
    fixed = [b.model_dump() for b in doc.boxes[:8]]
    answer = auth.json("PUT", f"/panel/api/projects/{slug}/images/{images[2]}/annotation", {"revision": doc.revision, "boxes": fixed})
    assert answer.status_code == 200  # type: ignore[attr-defined]
    qc = client.get(f"/panel/api/projects/{slug}/qc").get_json()
    assert qc["spot_checks"] == 3
    (row,) = qc["models"]["cells:3"]  # debris is not a class of the project: only cells are compared
    assert (row["cls"], row["frames"], row["mean_model"], row["mean_human"]) == ("cell", 3, 10.0, 9.3333)
    assert row["mean_diff"] == pytest.approx(2 / 3, abs=1e-4) and row["share_exact"] == pytest.approx(2 / 3, abs=1e-4)
    last = [p for p in written if p.measurement == "count_qc"][-1]
    assert last.tags == {"device": "scope-1", "project": "p", "model": "cells", "model_version": "3", "class": "cell"}
    assert last.fields["spot_checks"] == 3 and last.fields["mean_diff"] == pytest.approx(2 / 3)
    assert len([p for p in written if p.measurement == "count_qc"]) == 4  # 3 accepts + the fix, one class each
    page = client.get("/panel/models/").get_data(as_text=True)
    assert 'data-model="cells:3" data-class="cell"' in page and "67 %" in page


def test_frames_kept_for_another_reason_are_not_spot_checks(client: FlaskClient, inbox: Inbox) -> None:
    auth, slug = login(client)
    item = inbox.store.items()[0].id
    image = auth.json("POST", f"/panel/api/projects/{slug}/inbox/{item}/accept", {}).get_json()["image"]["id"]  # type: ignore[attr-defined]
    store = client.application.extensions["scopehive.panel"].projects
    assert store.image(slug, image).spot_check is None  # chosen because models disagreed: not a random draw
    assert client.get(f"/panel/api/projects/{slug}/qc").get_json() == {"models": {}, "spot_checks": 0}
