"""The access log never shows a secret query parameter, however its name is spelled: Flask reads
`?tok%65n=` and `?%74oken=` as `token`, so the log must too (they used to be logged in clear)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import requests

from device.config import DeviceConfig
from device.redact import redact_request_target
from device.web import WebServer, create_app
from device.web_settings import WebSettings
from tests.device.panel.helpers import SyntheticRuntime

SECRET = "stream-token-0123456789"


@pytest.mark.parametrize(("query", "logged"), [
    (f"token={SECRET}", "token=***"),
    (f"tok%65n={SECRET}&frames=3", "tok%65n=***&frames=3"),
    (f"%74%6F%6B%65%6E={SECRET}", "%74%6F%6B%65%6E=***"),
    (f"TOKEN={SECRET}", "TOKEN=***"),
    (f"frames=1&pass%77ord={SECRET}", "frames=1&pass%77ord=***"),
    (f"user-pw={SECRET}", "user-pw=***"),
    ("frames=3&interval=0.5", "frames=3&interval=0.5"),
])
def test_secret_parameters_are_redacted_by_their_decoded_name(query: str, logged: str) -> None:
    assert redact_request_target("/stream.mjpg", query) == f"/stream.mjpg?{logged}"


def test_the_access_log_of_the_real_server_hides_an_encoded_token(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="device.access")
    settings = WebSettings(access_log=True)
    config = DeviceConfig(data_dir=tmp_path, web=settings)
    server = WebServer(create_app(config, SyntheticRuntime(tmp_path / "cache"), with_panel=False), "127.0.0.1", 0,  # type: ignore[arg-type]
                       settings).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        for name in ("tok%65n", "%74oken", "token"):
            assert requests.get(f"{base}/snapshot.jpg?{name}={SECRET}", timeout=5).status_code == 200
    finally:
        server.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "device.access"]
    assert len(lines) == 3 and all("/snapshot.jpg?" in line and line.endswith(" 200") for line in lines), lines
    assert all(SECRET not in line and "=***" in line for line in lines), lines
