"""Panel fixtures (flaskr style): an app built by a test factory, a client, and an auth helper."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from device.config import DeviceConfig
from device.web_settings import PanelSettings
from tests.device.panel.helpers import SyntheticRuntime

PASSWORD = "correct horse battery"


def make_app(data_dir: Path, runtime: object | None = None, **panel: object) -> Flask:
    """The device's own app factory with the panel, or a bare app when no runtime is wanted."""
    config = DeviceConfig(data_dir=data_dir, panel=PanelSettings(**panel))  # type: ignore[arg-type]
    if runtime is not None:
        from device.web import create_app

        app = create_app(config, runtime)  # type: ignore[arg-type]
    else:
        from device import panel as panel_module

        app = Flask("panel-test")
        app.config["SCOPEHIVE"] = config
        panel_module.init_app(app)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def runtime(tmp_path: Path) -> SyntheticRuntime:
    return SyntheticRuntime(tmp_path / "runtime-cache")


@pytest.fixture
def app(tmp_path: Path, runtime: SyntheticRuntime, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
    return make_app(tmp_path / "data", runtime, max_image_pixels=2_000_000, max_upload_mb=5)


class Auth:
    """Logs the test client in and carries the CSRF token for state-changing requests."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def token(self) -> str:
        with self.client.session_transaction() as session:
            if "csrf" not in session:
                session["csrf"] = "test-token-0123456789"
            return str(session["csrf"])

    def login(self, password: str = PASSWORD) -> object:
        return self.client.post("/panel/login", data={"password": password, "csrf_token": self.token()})

    def post(self, url: str, **kwargs: object) -> object:
        data = dict(kwargs.pop("data", None) or {})  # type: ignore[call-overload]
        data["csrf_token"] = self.token()
        return self.client.post(url, data=data, **kwargs)  # type: ignore[arg-type]

    def json(self, method: str, url: str, body: object) -> object:
        return self.client.open(url, method=method, json=body, headers={"X-CSRF-Token": self.token()})

    def project(self, name: str = "Blood", classes: str = "cell, crystal, debris") -> str:
        self.post("/panel/projects/", data={"name": name, "classes": classes})
        with self.client.session_transaction() as session:
            return str(session["project"])


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as c:
        yield c


@pytest.fixture
def auth(client: FlaskClient) -> Auth:
    return Auth(client)
