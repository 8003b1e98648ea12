"""Login, CSRF, cookies and the stream gate: nothing changes without a login and a valid token."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.device.panel.conftest import PASSWORD, Auth, make_app


def test_pages_need_a_login(client: FlaskClient) -> None:
    for url in ("/panel/projects/", "/panel/capture", "/panel/annotate", "/panel/datasets/", "/panel/models/", "/panel/live"):
        response = client.get(url)
        assert response.status_code == 302 and "/panel/login" in response.headers["Location"]
    assert client.get("/panel/api/projects/x/images/y/annotation").status_code == 401


def test_wrong_password_is_refused_right_one_logs_in(auth: Auth, client: FlaskClient) -> None:
    assert auth.login("admin").status_code == 401  # type: ignore[attr-defined]
    assert client.get("/panel/projects/").status_code == 302
    response = auth.login()
    assert response.status_code == 302  # type: ignore[attr-defined]
    assert client.get("/panel/projects/").status_code == 200


def test_session_cookie_is_httponly_and_samesite(auth: Auth) -> None:
    response = auth.login()
    cookie = response.headers["Set-Cookie"]  # type: ignore[attr-defined]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize("password", ["", "admin", "password", "scopehive", "changeme"])
def test_without_an_installed_password_nobody_gets_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, password: str) -> None:
    monkeypatch.delenv("SCOPEHIVE_PANEL_PASSWORD", raising=False)
    app = make_app(tmp_path)
    with app.test_client() as client:
        page = client.get("/panel/login")
        assert page.status_code == 200 and b"SCOPEHIVE_PANEL_PASSWORD" in page.data
        Auth(client).login(password)
        assert client.get("/panel/projects/").status_code == 302


def test_state_changes_without_csrf_token_are_refused(auth: Auth, client: FlaskClient) -> None:
    auth.login()
    response = client.post("/panel/projects/", data={"name": "Forged", "classes": "cell"})
    assert response.status_code == 400 and b"CSRF" in response.data
    response = client.post("/panel/projects/", data={"name": "Forged", "classes": "cell", "csrf_token": "guess"})
    assert response.status_code == 400
    assert b"Forged" not in client.get("/panel/projects/").data
    slug = auth.project()
    capture = client.post(f"/panel/api/projects/{slug}/capture")
    assert capture.status_code == 400 and "CSRF" in capture.get_json()["error"]


def test_login_redirect_stays_on_this_site(auth: Auth, client: FlaskClient) -> None:
    response = client.post("/panel/login?next=//evil.example/x", data={"password": "correct horse battery", "csrf_token": auth.token()})
    assert response.headers["Location"] == "/panel/projects/"


def test_set_password_cli_stores_a_hash_that_logs_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from device.panel.__main__ import main

    monkeypatch.delenv("SCOPEHIVE_PANEL_PASSWORD", raising=False)
    config = tmp_path / "device.yaml"
    config.write_text(f"data_dir: {tmp_path}\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["set-password", "--config", str(config), "--stdin"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("a long lab password\n"))
    assert main(["set-password", "--config", str(config), "--stdin"]) == 0
    stored = (tmp_path / "panel" / "password.hash").read_text()
    assert "a long lab password" not in stored and stored.startswith(("scrypt:", "pbkdf2:"))
    app = make_app(tmp_path)
    with app.test_client() as client:
        Auth(client).login("a long lab password")
        assert client.get("/panel/projects/").status_code == 200


def test_stream_needs_login_or_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime: object) -> None:
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", "correct horse battery")
    monkeypatch.setenv("SCOPEHIVE_STREAM_TOKEN", "grafana-embed-token")
    app = make_app(tmp_path, runtime)
    with app.test_client() as client:
        assert client.get("/snapshot.jpg").status_code == 401
        assert client.get("/snapshot.jpg?token=wrong").status_code == 401
        assert client.get("/snapshot.jpg?token=grafana-embed-token").status_code == 200
        Auth(client).login()
        assert client.get("/snapshot.jpg").status_code == 200


def test_unreachable_storage_disables_the_panel_but_not_the_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime: object) -> None:
    monkeypatch.setenv("SCOPEHIVE_S3_ACCESS_KEY", "a")
    monkeypatch.setenv("SCOPEHIVE_S3_SECRET_KEY", "b")
    from tests.conftest import _free_port

    app = make_app(tmp_path, runtime, storage=f"s3://bucket?endpoint=127.0.0.1:{_free_port()}&secure=0")
    with app.test_client() as client:
        page = client.get("/panel/projects/")
        assert page.status_code == 503 and b"cannot open its storage" in page.data and b"panel.storage" in page.data
        assert client.get("/snapshot.jpg").status_code == 200


def test_first_start_password_needs_the_setup_code_from_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import re

    monkeypatch.delenv("SCOPEHIVE_PANEL_PASSWORD", raising=False)
    with caplog.at_level("WARNING"):
        app = make_app(tmp_path)
    code = re.search(r"PANEL SETUP CODE:\s+([0-9A-F]{4}-[0-9A-F]{4})", caplog.text)
    assert code, "the device log must show the one-time setup code"
    assert "=" * 72 in caplog.text, "the code is framed so it stands out in a scrolling log"
    with app.test_client() as client:
        auth = Auth(client)
        form = {"new_password": "microscope-42", "repeat_password": "microscope-42", "csrf_token": auth.token()}
        assert client.post("/panel/login", data={**form, "setup_code": "0000-0000"}).status_code == 403
        assert client.get("/panel/projects/").status_code == 302
        mismatch = {**form, "repeat_password": "other-password", "setup_code": code.group(1)}
        assert client.post("/panel/login", data=mismatch).status_code == 400
        done = client.post("/panel/login", data={**form, "setup_code": code.group(1).lower()})
        assert done.status_code == 302 and client.get("/panel/projects/").status_code == 200
        # the code is spent: replaying the form cannot set another password
        again = {"new_password": "attacker-pass", "repeat_password": "attacker-pass", "setup_code": code.group(1)}
        assert client.post("/panel/login", data={**again, "csrf_token": auth.token()}).status_code == 401
    restarted = make_app(tmp_path)
    with restarted.test_client() as client:
        assert Auth(client).login("microscope-42").status_code == 302  # type: ignore[attr-defined]
        assert Auth(client).login(PASSWORD).status_code == 401  # type: ignore[attr-defined]
        assert Auth(client).login("attacker-pass").status_code == 401  # type: ignore[attr-defined]
