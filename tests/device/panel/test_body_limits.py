"""Form and JSON bodies are capped before they are read: a 150 MB url-encoded password on the login
page, before any login, is a 413 that reads nothing (it took +303 MB), on the real server too."""

from __future__ import annotations

import io
import socket
import threading
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from device.panel.security import FORM_BODY_MAX, JSON_BODY_MAX
from device.web import WebServer
from tests.device.panel.conftest import PASSWORD, Auth, make_app
from tests.device.panel.helpers import SyntheticRuntime

MB = 1024 * 1024


class CountingBody(io.RawIOBase):
    """`size` bytes of a form field, made as they are read (never held); `read_bytes` says how much
    the server read. Seekable only so that the test client can measure it."""

    def __init__(self, size: int, prefix: bytes = b"password=") -> None:
        self.size, self.prefix, self.position, self.read_bytes = size, prefix, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = self.size + offset if whence == 2 else offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        start = self.position
        n = max(0, min(len(buffer), self.size - start))
        head = self.prefix[start:start + n]
        buffer[:n] = head + b"a" * (n - len(head))
        self.position += n
        self.read_bytes += n
        return n


def _post(client: FlaskClient, url: str, body: CountingBody, headers: dict[str, str], chunked: bool) -> object:
    """Without a length (chunked), the server says the stream ends by itself (as waitress does)."""
    if not chunked:
        return client.post(url, input_stream=body, headers=headers)
    return client.post(url, input_stream=body, headers={**headers, "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_huge_url_encoded_password_is_413_before_login_and_is_not_read(client: FlaskClient, chunked: bool) -> None:
    body = CountingBody(150 * MB)
    response = _post(client, "/panel/login", body, {"Content-Type": "application/x-www-form-urlencoded"}, chunked)
    assert response.status_code == 413  # type: ignore[attr-defined]
    assert "form body is larger than the 1024 KB limit" in response.get_json()["error"]  # type: ignore[attr-defined]
    # With a length the body is refused unread; without one, reading stops at the cap.
    assert body.read_bytes == 0 if not chunked else body.read_bytes <= FORM_BODY_MAX + 64 * 1024
    with client.session_transaction() as session:
        assert not session.get("user")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_huge_json_body_is_413_and_is_not_read(auth: Auth, client: FlaskClient, chunked: bool) -> None:
    auth.login()
    body = CountingBody(64 * MB, prefix=b'{"name": "')
    response = _post(client, "/panel/api/experiments/start", body,
                     {"Content-Type": "application/json", "X-CSRF-Token": auth.token()}, chunked)
    assert response.status_code == 413  # type: ignore[attr-defined]
    assert "JSON body is larger than the 4096 KB limit" in response.get_json()["error"]  # type: ignore[attr-defined]
    assert body.read_bytes == 0 if not chunked else body.read_bytes <= JSON_BODY_MAX + 64 * 1024


def test_forms_and_json_under_the_caps_still_work(auth: Auth, client: FlaskClient) -> None:
    """A long (not huge) password field is checked as usual; the right one logs in; JSON under its cap is read."""
    response = client.post("/panel/login", data={"password": "x" * (FORM_BODY_MAX // 2), "csrf_token": auth.token()})
    assert response.status_code == 401 and "Wrong password" in response.get_data(as_text=True)
    assert auth.login().status_code == 302  # type: ignore[attr-defined]
    answer = auth.json("POST", "/panel/api/experiments/start", {"name": "n", "notes": "x" * 1000, "padding": "y" * MB})
    assert answer.status_code in (400, 503) and "larger than" not in answer.get_json()["error"]  # type: ignore[attr-defined]


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        line = next(x for x in fh if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


class PeakRss:
    """The highest resident size of this process (the server runs in it) while the block runs."""

    def __enter__(self) -> PeakRss:
        self.before = self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def grown(self) -> float:
        return self.peak - self.before


def _send_form(port: int, size: int) -> bytes:
    """POST a url-encoded body of `size` bytes in 1 MB writes; the server's reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(b"POST /panel/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     + f"Content-Length: {size}\r\nConnection: close\r\n\r\npassword=".encode())
        chunk, sent = b"a" * MB, len(b"password=")
        try:
            while sent < size:
                part = chunk[: size - sent]
                conn.sendall(part)
                sent += len(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the whole body is in
        reply = b""
        while data := conn.recv(65536):
            reply += data
        return reply


def test_on_the_real_server_a_150_mb_form_costs_no_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attack as it was made: 150 MB url-encoded, streamed over a socket to waitress, no login.
    Before the cap the process peaked 300 MB higher (the body, then the parsed field)."""
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
    app: Flask = make_app(tmp_path / "data", SyntheticRuntime(tmp_path / "cache"), max_upload_mb=200)
    server = WebServer(app, "127.0.0.1", 0).start()
    try:
        with PeakRss() as rss:
            reply = _send_form(server.port, 150 * MB)
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
        assert b"form body is larger than the 1024 KB limit" in reply
        assert rss.grown < 40, f"the process grew by {rss.grown:.0f} MB for one refused form"
    finally:
        server.stop()
