"""Attacks on the login and request checks: each answers a clear 4xx, never a 500, and changes nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from device.panel.security import SECURITY_HEADERS
from tests.device.panel.conftest import PASSWORD, Auth, make_app


@pytest.mark.parametrize(
    "target",
    [
        "/%09/evil.example", "/%0a/evil.example", "/%0d%0a/evil.example", "/%0aLocation:%20http://evil.example",
        "/%5Cevil.example", "/\\evil.example", "%2F%2Fevil.example", "//evil.example", "https://evil.example/x",
        "/%20/evil.example", "/%e2%80%8b/evil.example", "javascript:alert(1)",
    ],
)
def test_login_never_redirects_off_site(auth: Auth, client: FlaskClient, target: str) -> None:
    response = client.post(f"/panel/login?next={target}", data={"password": PASSWORD, "csrf_token": auth.token()})
    assert response.status_code == 302 and response.headers["Location"] == "/panel/projects/"


def test_login_keeps_a_local_next_path(auth: Auth, client: FlaskClient) -> None:
    response = client.post("/panel/login?next=/panel/annotate%3Fimage%3Dabc", data={"password": PASSWORD, "csrf_token": auth.token()})
    assert response.headers["Location"] == "/panel/annotate?image=abc"


def test_non_ascii_csrf_token_is_400_and_changes_nothing(app: Flask, auth: Auth, client: FlaskClient) -> None:
    auth.login()
    response = client.post("/panel/projects/", data={"name": "Sneaky", "csrf_token": "tökén-ü"})
    assert response.status_code == 400
    response = client.open("/panel/projects/", method="POST", data={"name": "Sneaky"}, headers={"X-CSRF-Token": "t\u00f6k"})
    assert response.status_code == 400
    assert app.extensions["scopehive.panel"].projects.list_projects() == []


def test_non_ascii_setup_code_is_refused_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCOPEHIVE_PANEL_PASSWORD", raising=False)
    app = make_app(tmp_path)
    with app.test_client() as client:
        form = {"setup_code": "ÄÖÜ-ß", "new_password": "microscope-42", "repeat_password": "microscope-42", "csrf_token": Auth(client).token()}
        assert client.post("/panel/login", data=form).status_code == 403
    assert not (tmp_path / "panel" / "password.hash").exists()


def test_every_response_carries_the_security_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime: object) -> None:
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
    app = make_app(tmp_path, runtime)
    with app.test_client() as client:
        for path in ("/panel/login", "/panel/projects/", "/healthz", "/snapshot.jpg", "/panel/static/panel.css"):
            response = client.get(path)
            for name, value in SECURITY_HEADERS.items():
                assert response.headers.get(name) == value, (path, name)
        assert "frame-ancestors 'self'" in SECURITY_HEADERS["Content-Security-Policy"]


def test_a_too_short_environment_password_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", "1234")
    with caplog.at_level(logging.ERROR):
        app = make_app(tmp_path)
    assert "SCOPEHIVE_PANEL_PASSWORD is set but has 4 characters; at least 8 are needed" in caplog.text
    with app.test_client() as client:
        assert Auth(client).login("1234").status_code == 403  # type: ignore[attr-defined]  (no password: setup-code form)
        assert client.get("/panel/projects/").status_code == 302
