"""Models page against a real running device: run a model beside the main one, hide its boxes,
stop it; bad input changes nothing."""

from __future__ import annotations

import html
import io
import zipfile
from pathlib import Path

import pytest
from flask import Flask

from device.runtime import Runtime
from tests.device.panel.conftest import PASSWORD, Auth, make_app
from tests.device.runtime_helpers import facade, wait_for


def _zip(bundle: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("model.json", "model.onnx"):
            archive.write(bundle / name, name)
    return buffer.getvalue()


@pytest.fixture
def device_app(running: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
    return make_app(tmp_path / "panel", facade(running))


def _page(response: object) -> str:
    return html.unescape(response.data.decode())  # type: ignore[attr-defined]


def test_run_beside_hide_and_stop(device_app: Flask, running: Runtime, peak_bundle_v2: Path) -> None:
    with device_app.test_client() as client:
        auth = Auth(client)
        auth.login()
        slug = auth.project()
        added = _page(auth.post("/panel/models/", data={"bundle": (io.BytesIO(_zip(peak_bundle_v2)), "b.zip")},
                                content_type="multipart/form-data", follow_redirects=True))
        assert "Model peaks-b:2.0.0 added" in added, added[-2000:]
        stored = device_app.extensions["scopehive.panel"].models.list(
            device_app.extensions["scopehive.panel"].projects.project(slug))
        model_id = stored[0].id
        refused = _page(auth.post(f"/panel/models/{model_id}/beside", data={"every": "0"}, follow_redirects=True))
        assert "'Every' must be a whole number" in refused and len(running.parts.feed.pipelines) == 1
        page = _page(auth.post(f"/panel/models/{model_id}/beside", data={"every": "3"}, follow_redirects=True))
        assert "peaks-b:2.0.0 now runs beside as 'peaks-b', on every 3 frame(s)" in page
        assert [p.name for p in running.parts.feed.pipelines] == ["main", "peaks-b"] and facade(running).model_card().name == "peaks"  # type: ignore[union-attr]
        start = running.parts.publisher.processed
        assert wait_for(lambda: running.parts.publisher.processed >= start + 6)
        assert {h["model"] for h in running.parts.outbox.history(60)} >= {"peaks", "peaks-b"}
        page = _page(auth.post("/panel/models/feed/peaks-b/overlay", data={"shown": "0"}, follow_redirects=True))
        assert "hidden on the stream" in page and running.parts.feed.pipeline("peaks-b").options.overlay is False
        assert "Nothing changed" in _page(auth.post("/panel/models/feed/nope/overlay", data={"shown": "1"}, follow_redirects=True))
        assert "cannot be removed" in _page(auth.post("/panel/models/feed/main/remove", follow_redirects=True))
        page = _page(auth.post("/panel/models/feed/peaks-b/remove", follow_redirects=True))
        assert "'peaks-b' stopped" in page and [p.name for p in running.parts.feed.pipelines] == ["main"]


def test_run_beside_twice_is_refused_and_the_running_model_is_listed(device_app: Flask, running: Runtime, peak_bundle_v2: Path) -> None:
    with device_app.test_client() as client:
        auth = Auth(client)
        auth.login()
        slug = auth.project()
        page = _page(client.get("/panel/models/"))
        main = facade(running).model_card()
        assert main is not None and f"<b>{main.label}</b>" in page and "loaded by the device itself" in page  # --model, not uploaded
        auth.post("/panel/models/", data={"bundle": (io.BytesIO(_zip(peak_bundle_v2)), "b.zip")}, content_type="multipart/form-data")
        panel = device_app.extensions["scopehive.panel"]
        model_id = panel.models.list(panel.projects.project(slug))[0].id
        assert "now runs beside" in _page(auth.post(f"/panel/models/{model_id}/beside", data={"every": "1"}, follow_redirects=True))
        again = _page(auth.post(f"/panel/models/{model_id}/beside", data={"every": "2"}, follow_redirects=True))
        assert "peaks-b:2.0.0 already runs on this feed (as 'peaks-b'): nothing was added" in again
        assert [p.name for p in running.parts.feed.pipelines] == ["main", "peaks-b"]
