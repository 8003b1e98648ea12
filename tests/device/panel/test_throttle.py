"""Guessing the password or the setup code is throttled per client and overall."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from device.panel.throttle import Throttle
from tests.device.panel.conftest import Auth, make_app


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_windows() -> None:
    clock = FakeClock()
    throttle = Throttle(per_client=3, overall=5, window_s=60, clock=clock)
    for _ in range(3):
        assert throttle.retry_after("a") == 0
        throttle.failed("a")
    assert throttle.retry_after("a") == 60 and throttle.retry_after("b") == 0
    throttle.failed("b")
    throttle.failed("c")
    assert throttle.retry_after("d") == 60  # five failures overall: everyone waits
    clock.now += 60
    assert throttle.retry_after("a") == 0 and throttle.retry_after("d") == 0
    throttle.failed("a")
    throttle.succeeded("a")
    assert throttle.retry_after("a") == 0


def test_password_guessing_is_locked_out_even_for_the_right_password(app: Flask, auth: Auth, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(app.extensions["scopehive.panel"].login_throttle, "clock", clock)
    checked: list[str] = []
    import device.panel.auth as auth_module

    real = auth_module.check_password
    monkeypatch.setattr(auth_module, "check_password", lambda p: checked.append(p) or real(p))
    for i in range(5):
        assert auth.login(f"guess-{i}").status_code == 401  # type: ignore[attr-defined]
    locked = auth.login()
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "60"  # type: ignore[attr-defined]
    assert "Too many wrong tries" in locked.data.decode()  # type: ignore[attr-defined]
    assert len(checked) == 5  # the locked-out try burnt no password hashing
    assert client.get("/panel/projects/").status_code == 302
    with app.test_client() as other:
        other.environ_base["REMOTE_ADDR"] = "10.0.0.9"
        assert Auth(other).login().status_code == 302  # type: ignore[attr-defined]
    clock.now += 61
    assert auth.login().status_code == 302  # type: ignore[attr-defined]


def test_setup_code_guessing_is_locked_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCOPEHIVE_PANEL_PASSWORD", raising=False)
    app = make_app(tmp_path)
    code = app.extensions["scopehive.panel"].setup_code
    with app.test_client() as client:
        token = Auth(client).token()
        form = {"new_password": "microscope-42", "repeat_password": "microscope-42", "csrf_token": token}
        for i in range(5):
            assert client.post("/panel/login", data={**form, "setup_code": f"0000-000{i}"}).status_code == 403
        locked = client.post("/panel/login", data={**form, "setup_code": code})
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) == 600
    assert not (tmp_path / "panel" / "password.hash").exists()
    assert app.extensions["scopehive.panel"].password_hash is None
