"""Ending sessions: a cookie copied before logout or before a password change stops working."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from flask import Flask

from tests.device.panel.conftest import PASSWORD, Auth, make_app


def _logged_in_cookie(app: Flask, password: str = PASSWORD) -> str:
    with app.test_client() as client:
        assert Auth(client).login(password).status_code == 302  # type: ignore[attr-defined]
        assert client.get("/panel/projects/").status_code == 200
        cookie = client.get_cookie("session")
        assert cookie is not None
        return cookie.value


def _works(app: Flask, cookie: str) -> bool:
    with app.test_client() as client:
        client.set_cookie("session", cookie)
        return bool(client.get("/panel/projects/").status_code == 200)


def test_a_cookie_copied_before_logout_is_dead_after_it(app: Flask) -> None:
    stolen = _logged_in_cookie(app)
    with app.test_client() as client:
        client.set_cookie("session", stolen)
        auth = Auth(client)
        assert client.post("/panel/logout", data={"csrf_token": auth.token()}).status_code == 302
    assert not _works(app, stolen)
    with app.test_client() as client:
        client.set_cookie("session", stolen)
        assert client.get("/panel/api/projects/x/images/y/annotation").status_code == 401
        assert client.get("/snapshot.jpg").status_code in (401, 404)
    assert _works(app, _logged_in_cookie(app))  # logging in again still works


def test_other_logins_survive_one_logout(app: Flask) -> None:
    mine, theirs = _logged_in_cookie(app), _logged_in_cookie(app)
    with app.test_client() as client:
        client.set_cookie("session", mine)
        client.post("/panel/logout", data={"csrf_token": Auth(client).token()})
    assert not _works(app, mine) and _works(app, theirs)


def test_a_restart_with_a_new_environment_password_ends_every_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
    cookie = _logged_in_cookie(make_app(tmp_path))
    assert _works(make_app(tmp_path), cookie)  # a restart with the same password keeps logins
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", "a brand new password")
    restarted = make_app(tmp_path)
    assert not _works(restarted, cookie)
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
    assert not _works(make_app(tmp_path), cookie)  # and switching back does not revive it


def test_set_password_then_restart_ends_every_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from device.panel.__main__ import main

    monkeypatch.delenv("SCOPEHIVE_PANEL_PASSWORD", raising=False)
    config = tmp_path / "device.yaml"
    config.write_text(f"data_dir: {tmp_path}\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("first lab password\n"))
    assert main(["set-password", "--config", str(config), "--stdin"]) == 0
    cookie = _logged_in_cookie(make_app(tmp_path), "first lab password")
    monkeypatch.setattr("sys.stdin", io.StringIO("second lab password\n"))
    assert main(["set-password", "--config", str(config), "--stdin"]) == 0
    assert not _works(make_app(tmp_path), cookie)
    assert (tmp_path / "panel" / "sessions.json").stat().st_mode & 0o777 == 0o600
