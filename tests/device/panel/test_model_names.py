"""The Models page refuses a bundle whose version would break every metric line (issue 21, item 1)."""

from __future__ import annotations

import html
import io
import json
import zipfile
from pathlib import Path

from flask import Flask

from tests.device.panel.conftest import Auth
from tests.device.panel.helpers import bundle_zip, card


def test_the_models_page_refuses_the_bundle_with_the_reason(app: Flask, auth: Auth, tmp_path: Path) -> None:
    auth.login()
    slug = auth.project()
    path = bundle_zip(tmp_path / "ok.zip")
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(path) as good, zipfile.ZipFile(evil, "w") as bad:
        bad.writestr("model.json", json.dumps({**card(), "version": "2026.12\nevil"}))
        bad.writestr("model.onnx", good.read("model.onnx"))
    response = auth.post("/panel/models/", data={"bundle": (io.BytesIO(evil.read_bytes()), "evil.zip")},
                         content_type="multipart/form-data", follow_redirects=True)
    page = html.unescape(response.data.decode())  # type: ignore[attr-defined]
    assert "Model not added: evil.zip" in page and "control character U+000A" in page
    project = app.extensions["scopehive.panel"].projects.project(slug)
    assert app.extensions["scopehive.panel"].models.list(project) == []
