"""HTTP/1.1 to one hive endpoint over a plain socket, with a deadline for the whole exchange and a
cap on the bytes read.

A reply is untrusted input: neither its size nor its pace is the server's to choose. Every read
waits at most until the request's deadline (not a fresh timeout per read, which a server dripping
one byte at a time stretches without end), and a body is refused from its Content-Length, before
it is read, when it is larger than the caller allows (chunked and unframed bodies are counted as
they arrive). A connection is reused for the next request only after a complete, well-framed reply.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

HEAD_LIMIT = 16 * 1024  # status line and headers
CHUNK_LINE_LIMIT = 1024
READ_SIZE = 64 * 1024


class WireError(RuntimeError):
    """The exchange failed; the message says why in words for /healthz."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


class Connection:
    """One keep-alive connection to `url` (http:// or https://); not shared between threads."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise WireError(f"not an http(s) URL: {url}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.secure = parts.scheme == "https"
        self.prefix = parts.path.rstrip("/")
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self._deadline = 0.0

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._buffer.clear()

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None, *,
                deadline: float, max_body: int) -> Response:
        """One exchange, finished by `deadline` (time.monotonic()) or WireError. A reused
        connection the server had closed meanwhile is reopened once, if no reply byte came."""
        for attempt in range(2):
            reused = self._sock is not None
            try:
                return self._exchange(method, path, body, headers or {}, deadline, max_body)
            except _Eof as eof:
                self.close()
                if eof.started or not reused or attempt:
                    raise WireError("the server closed the connection " + ("mid-reply" if eof.started else "without a reply")) from None
        raise AssertionError("unreachable")

    def _exchange(self, method: str, path: str, body: bytes, headers: dict[str, str], deadline: float,
                  max_body: int) -> Response:
        self._deadline = deadline
        try:
            sock = self._connect()
            head = [f"{method} {self.prefix}{path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                    f"Content-Length: {len(body)}", "Connection: keep-alive", *(f"{k}: {v}" for k, v in headers.items())]
            sock.settimeout(self._remaining())
            try:
                sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            except (BrokenPipeError, ConnectionResetError):
                raise _Eof(started=False) from None
            status, reply_headers, keep = self._read_head()
            data = self._read_body(reply_headers, max_body)
        except _Eof:
            raise
        except WireError:
            self.close()
            raise
        except TimeoutError:
            self.close()
            raise WireError("too slow (deadline passed)") from None
        except (ConnectionRefusedError, socket.gaierror) as exc:
            self.close()
            raise WireError(f"unreachable ({exc})") from exc
        except (OSError, ssl.SSLError, ValueError, UnicodeError) as exc:
            self.close()
            raise WireError(f"{type(exc).__name__}: {exc}"[:300]) from exc
        if not keep or self._buffer or "content-length" not in reply_headers:
            self.close()  # unframed, or bytes past the reply: never reuse such a connection
        return Response(status, reply_headers, data)

    # ---- the socket ---------------------------------------------------------------------------
    def _remaining(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise WireError("too slow (deadline passed)")
        return left

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self._remaining())
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.secure:
                sock.settimeout(self._remaining())
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
            self._sock = sock
        return self._sock

    def _fill(self, started: bool = True) -> None:
        """Read what has arrived (at most READ_SIZE), waiting no longer than the deadline."""
        assert self._sock is not None
        self._sock.settimeout(self._remaining())
        try:
            data = self._sock.recv(READ_SIZE)
        except ConnectionResetError:
            raise _Eof(started) from None
        if not data:
            raise _Eof(started)
        self._buffer += data

    def _take(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._fill()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def _line(self, limit: int) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if len(self._buffer) > limit:
                raise WireError(f"a reply line longer than {limit} bytes")
            self._fill()
        return self._take(end + 2)[:-2]

    # ---- the reply ----------------------------------------------------------------------------
    def _read_head(self) -> tuple[int, dict[str, str], bool]:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if len(self._buffer) > HEAD_LIMIT:
                raise WireError(f"reply headers longer than {HEAD_LIMIT} bytes")
            self._fill(started=bool(self._buffer))
        if end > HEAD_LIMIT:
            raise WireError(f"reply headers longer than {HEAD_LIMIT} bytes")
        lines = self._take(end + 4).decode("latin-1").split("\r\n")[:-2]
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise WireError(f"not an HTTP reply: {lines[0][:80]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise WireError(f"malformed reply header {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
        return int(code), headers, keep

    def _read_body(self, headers: dict[str, str], max_body: int) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked(max_body)
        length_text = headers.get("content-length")
        if length_text is None:
            return self._read_to_close(max_body)
        if not length_text.isdigit():
            raise WireError(f"malformed Content-Length {length_text[:40]!r}")
        length = int(length_text)
        if length > max_body:
            raise WireError(f"reply of {length} bytes, more than the {max_body} bytes this model's outputs can take")
        return self._take(length)

    def _read_chunked(self, max_body: int) -> bytes:
        body = bytearray()
        while True:
            size_text = self._line(CHUNK_LINE_LIMIT).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise WireError(f"malformed chunk size {size_text[:40]!r}") from None
            if len(body) + size > max_body:
                raise WireError(f"reply of more than {max_body} bytes (chunked), more than this model's outputs can take")
            if size == 0:
                while self._line(HEAD_LIMIT):  # trailers, up to the blank line
                    pass
                return bytes(body)
            body += self._take(size)
            if self._take(2) != b"\r\n":
                raise WireError("malformed chunk framing")

    def _read_to_close(self, max_body: int) -> bytes:
        """A body framed by the end of the connection (allowed by HTTP/1.1, never kept alive)."""
        while len(self._buffer) <= max_body:
            try:
                self._fill()
            except _Eof:
                return self._take(len(self._buffer))
        raise WireError(f"reply of more than {max_body} bytes, more than this model's outputs can take")


class _Eof(Exception):
    """The server closed the connection; `started`: after some of the reply had come."""

    def __init__(self, started: bool) -> None:
        super().__init__("connection closed")
        self.started = started
