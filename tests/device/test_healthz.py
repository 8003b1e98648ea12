"""/healthz and credentials: anonymous callers get only the healthcheck answer; nothing anywhere
(healthz, camera error, device_event, log) shows the password of a camera URI."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from pathlib import Path

import pytest

from device.config import DeviceConfig
from device.redact import redact, redact_logging
from device.sources.base import SourceError
from device.sources.capture import Capture
from device.web import create_app
from tests.device.runtime_helpers import facade, start_runtime, wait_for

SECRET = "s3cret-pa55"
CAMERA = f"rtsp://operator:{SECRET}@127.0.0.1:9/live"  # port 9: nothing listens, the camera stays lost


@pytest.fixture
def lost_camera(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SCOPEHIVE_STREAM_TOKEN", "grafana-token")
    config = DeviceConfig.model_validate({"source": CAMERA, "data_dir": str(tmp_path), "port": 0,
                                          "capture": {"reconnect_min_s": 0.05, "reconnect_max_s": 0.1}})
    runtime, thread = start_runtime(config)
    assert wait_for(lambda: facade(runtime).health()["camera"]["state"] == "reconnecting", timeout=30)
    yield runtime, create_app(config, facade(runtime), with_panel=False).test_client()
    runtime.stop()
    thread.join(timeout=5)
    runtime.shutdown()


def test_anonymous_healthz_says_only_ok_or_not(lost_camera) -> None:  # type: ignore[no-untyped-def]
    _, client = lost_camera
    response = client.get("/healthz")
    assert response.status_code == 503 and response.get_json() == {"ok": False, "status": "unhealthy"}
    wrong = client.get("/healthz", headers={"Authorization": "Bearer not-the-token"})
    assert set(wrong.get_json()) == {"ok", "status"}


def test_details_need_the_token_and_never_show_the_password(lost_camera) -> None:  # type: ignore[no-untyped-def]
    runtime, client = lost_camera
    for response in (client.get("/healthz", headers={"Authorization": "Bearer grafana-token"}),
                     client.get("/healthz?token=grafana-token")):
        body = response.get_data(as_text=True)
        assert response.status_code == 503 and SECRET not in body
        camera = response.get_json()["camera"]
        assert camera["source"] == "rtsp://***@127.0.0.1:9/live" and camera["error"]
    assert runtime.parts.events.recent and all(SECRET not in e["message"] for e in runtime.parts.events.recent)
    # the capture thread's event may commit a moment after the state it reports: wait for it
    assert wait_for(lambda: any("***@127.0.0.1:9" in m for m in _event_messages(runtime)), timeout=30)
    assert not any(SECRET in m for m in _event_messages(runtime))


def _event_messages(runtime) -> list[str]:  # type: ignore[no-untyped-def]
    """The device_event messages committed to the outbox, read as another process would."""
    db = sqlite3.connect(runtime.parts.config.data_dir / "outbox.sqlite")
    try:
        rows = db.execute("SELECT fields FROM points WHERE measurement = 'device_event'").fetchall()
    finally:
        db.close()
    return [json.loads(f)["message"] for (f,) in rows]


def test_a_driver_error_quoting_the_uri_is_redacted() -> None:
    class Refuses:
        name, live = "cam", True

        def open(self) -> None:
            raise SourceError(f"[ffmpeg] {CAMERA}: 401 Unauthorized (user-pw={SECRET})")

        def read(self) -> None:
            return None

        def close(self) -> None:
            pass

    events: list[tuple[str, str]] = []
    capture = Capture(Refuses(), (0.05, 0.1), events=lambda kind, message: events.append((kind, message))).start()
    try:
        assert wait_for(lambda: bool(events))
    finally:
        capture.stop()
    assert SECRET not in capture.error and SECRET not in events[0][1] and "rtsp://***@" in capture.error


def test_log_lines_are_redacted_whoever_wrote_them() -> None:
    stream = io.StringIO()
    root = logging.getLogger("redaction-test-root")
    root.addHandler(logging.StreamHandler(stream))
    root.propagate = False
    redact_logging(root)
    root.error("cannot open %s", CAMERA)
    try:
        raise ValueError(f"driver said {CAMERA}")
    except ValueError:
        root.exception("boom")
    assert SECRET not in stream.getvalue() and "rtsp://***@127.0.0.1:9/live" in stream.getvalue()


@pytest.mark.parametrize(("text", "clean"), [
    ("rtsp://u:p@cam/x", "rtsp://***@cam/x"),
    ("http://token@influx:8086", "http://***@influx:8086"),
    ("rtspsrc location=rtsp://cam/x user-id=u user-pw=p ! appsink", "rtspsrc location=rtsp://cam/x user-id=u user-pw=*** ! appsink"),
    ("/stream.mjpg?token=abc&frames=2", "/stream.mjpg?token=***&frames=2"),
    ("rtsp://cam/x", "rtsp://cam/x"),
    ("mail me at a@b.org", "mail me at a@b.org"),
])
def test_redact_table(text: str, clean: str) -> None:
    assert redact(text) == clean
