"""`python -m trainer rollout|rollback`: what a user sees when something is missing, and the
Grafana annotation a rollout leaves (Grafana can't run here: a loopback server records the call)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.device.bundles import peak_detector_bundle
from tests.fleet.fake_balena import FakeBalena
from trainer.cli import main


@pytest.fixture
def grafana() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Records POST /api/annotations the way Grafana's HTTP API receives them."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
            data = json.dumps({"id": len(seen), "message": "Annotation added"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()


def test_missing_credentials_are_named(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SCOPEHIVE_STORE", raising=False)
    monkeypatch.delenv("BALENA_API_KEY", raising=False)
    assert main(["rollback", "--fleet", "lab/hive"]) == 2
    assert "no object store: give --store" in capsys.readouterr().err

    assert main(["rollback", "--fleet", "lab/hive", "--store", "s3://b?endpoint=127.0.0.1:9"]) == 2
    assert "BALENA_API_KEY is not set" in capsys.readouterr().err


def test_rollout_publishes_assigns_and_marks_grafana(tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch,
                                                     grafana: tuple[str, list[dict[str, Any]]],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    url, annotations = grafana
    api = FakeBalena()
    device_id = api.add_device(api.add_fleet("lab/hive"), "f" * 32, "pc-1", "genericx86-64-ext")
    api.add("device_tag", device=device_id, tag_key="scopehive.model.running", value="peaks:3.1.3")
    api_url = api.start()
    for key, value in {"SCOPEHIVE_S3_ACCESS_KEY": "k", "SCOPEHIVE_S3_SECRET_KEY": "s", "BALENA_API_KEY": api.user_token,
                       "GRAFANA_URL": url, "GRAFANA_TOKEN": "glsa_test"}.items():
        monkeypatch.setenv(key, value)
    bundle = peak_detector_bundle(tmp_path / "bundle", version="3.1.4")
    store = f"s3://cli-test?endpoint={s3_endpoint}&secure=0"
    common = ["--fleet", "lab/hive", "--store", store, "--balena-api-url", api_url, "--wait-s", "0"]
    try:
        assert main(["rollout", str(bundle), *common]) == 0
        out = capsys.readouterr().out
        assert "published peaks:3.1.4 to s3://cli-test/models/peaks/3.1.4/" in out
        assert api.tag(device_id, "scopehive.model") == "peaks:3.1.4"

        assert main(["rollback", *common]) == 0
        assert api.tag(device_id, "scopehive.model") == "peaks:3.1.3"
    finally:
        api.stop()

    deployed, restored = annotations
    assert deployed["path"] == "/api/annotations" and deployed["auth"] == "Bearer glsa_test"
    assert "peaks" in deployed["text"] and "3.1.4" in deployed["text"] and "lab/hive" in deployed["text"]
    assert "3.1.3 (rollback of peaks:3.1.4)" in restored["text"]
