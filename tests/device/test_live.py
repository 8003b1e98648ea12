"""The live blueprint through Flask's test client (with_panel=False: the panel tests its own login)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from flask.testing import FlaskClient

import device.board as board_module
from device.config import DeviceConfig
from device.runtime import Runtime
from device.web import create_app
from tests.device.runtime_helpers import facade, start_runtime, wait_for


@pytest.fixture
def client(running: Runtime) -> Iterator[FlaskClient]:
    app = create_app(running.parts.config, facade(running), with_panel=False)
    yield app.test_client()


def test_snapshot_is_the_annotated_full_frame(client: FlaskClient) -> None:
    response = client.get("/snapshot.jpg")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(response.data, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (240, 320, 3)
    assert image[5:40, 5:100].std() > 10  # the legend (FPS, counts) is drawn


def test_mjpeg_stream_sends_successive_frames(client: FlaskClient) -> None:
    response = client.get("/stream.mjpg?frames=3")
    assert response.mimetype == "multipart/x-mixed-replace"
    parts = [p for p in response.data.split(b"--scopehiveframe\r\n") if p]
    assert len(parts) == 3
    for part in parts:
        header, body = part.split(b"\r\n\r\n", 1)
        assert b"image/jpeg" in header
        assert cv2.imdecode(np.frombuffer(body[:-2], np.uint8), cv2.IMREAD_COLOR) is not None


def test_live_stats_are_server_sent_events(client: FlaskClient) -> None:
    response = client.get("/api/live?events=2&interval=0.1")
    assert response.mimetype == "text/event-stream"
    events = [json.loads(line[len("data: "):]) for line in response.data.decode().splitlines() if line.startswith("data: ")]
    assert len(events) == 2
    assert events[1]["frame_index"] >= events[0]["frame_index"]
    assert set(events[0]["counts"]) == {"cell", "crystal", "debris"} and events[0]["model"]["name"] == "peaks"


def test_history_and_healthz(client: FlaskClient, running: Runtime) -> None:
    history = running.parts.outbox.history(60)  # the panel serves it (behind its login) at /panel/api/live/history
    assert history and {"time", "count", "fps", "classes"} <= set(history[-1])
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json()["ok"] is True


def test_healthz_is_503_while_the_camera_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPEHIVE_STREAM_TOKEN", "t0ken")
    config = DeviceConfig.model_validate({"source": str(tmp_path / "no-such-folder"), "data_dir": str(tmp_path), "port": 0,
                                          "capture": {"reconnect_min_s": 0.05, "reconnect_max_s": 0.1}})
    runtime, thread = start_runtime(config)
    try:
        client = create_app(config, facade(runtime), with_panel=False).test_client()
        assert wait_for(lambda: facade(runtime).health()["camera"]["state"] == "reconnecting")
        response = client.get("/healthz", headers={"Authorization": "Bearer t0ken"})
        assert response.status_code == 503
        assert "no images" in response.get_json()["camera"]["error"]
        assert client.get("/snapshot.jpg").status_code == 503
    finally:
        runtime.stop()
        thread.join(timeout=5)
        runtime.shutdown()


def test_no_viewer_no_jpeg_encoding(running: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = board_module.encode_jpeg
    monkeypatch.setattr(board_module, "encode_jpeg", lambda image, quality=80: calls.append(1) or real(image, quality))
    start = running.parts.publisher.processed
    assert wait_for(lambda: running.parts.publisher.processed >= start + 10)
    assert calls == []  # frames processed, nobody watching, nothing encoded
    assert facade(running).annotated_jpeg() is not None and calls == [1]
