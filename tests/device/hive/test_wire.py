"""HTTP to a hive endpoint: one deadline for the whole exchange, a cap on what is read, and a
connection reused only after a complete reply. Against raw loopback servers that misbehave."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from device.hive.wire import Connection, WireError

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
Script = Callable[[socket.socket], None]


class RawServer:
    """Accepts connections on loopback and hands each to `script`; counts connections."""

    def __init__(self, script: Script) -> None:
        self.script, self.connections = script, 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self.script(conn)
        except OSError:
            pass
        finally:
            conn.close()


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise OSError("client gone")
        data += chunk
    return data


@pytest.fixture
def serve() -> Iterator[Callable[[Script], RawServer]]:
    servers: list[RawServer] = []

    def start(script: Script) -> RawServer:
        servers.append(RawServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.sock.close()


def soon(seconds: float = 0.5) -> float:
    return time.monotonic() + seconds


def test_a_connection_is_kept_for_the_next_request(serve: Callable[[Script], RawServer]) -> None:
    def two_replies(conn: socket.socket) -> None:
        for _ in range(2):
            read_request(conn)
            conn.sendall(OK)

    server = serve(two_replies)
    connection = Connection(server.url)
    for _ in range(2):
        assert connection.request("GET", "/", deadline=soon(), max_body=10).body == b"ok"
    assert server.connections == 1


def test_an_idle_connection_the_server_dropped_is_reopened_once(serve: Callable[[Script], RawServer]) -> None:
    def one_reply_then_close(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(OK)

    server = serve(one_reply_then_close)
    connection = Connection(server.url)
    assert connection.request("GET", "/", deadline=soon(), max_body=10).body == b"ok"
    time.sleep(0.05)
    assert connection.request("GET", "/", deadline=soon(), max_body=10).body == b"ok"
    assert server.connections == 2


def test_the_deadline_holds_for_the_whole_reply_not_each_read(serve: Callable[[Script], RawServer]) -> None:
    def drip(conn: socket.socket) -> None:
        read_request(conn)
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + bytes(100):
            conn.sendall(bytes([byte]))
            time.sleep(0.01)  # each read waits 10 ms, the whole reply 1.4 s

    connection = Connection(serve(drip).url)
    start = time.monotonic()
    with pytest.raises(WireError, match="too slow"):
        connection.request("GET", "/", deadline=soon(0.3), max_body=1000)
    assert time.monotonic() - start < 0.6


def test_a_body_over_the_cap_is_refused_from_its_length_unread(serve: Callable[[Script], RawServer]) -> None:
    def claim(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
        time.sleep(2)  # the body never comes: refusing must not wait for it

    connection = Connection(serve(claim).url)
    start = time.monotonic()
    with pytest.raises(WireError, match="reply of 1073741824 bytes, more than the 1000 bytes"):
        connection.request("GET", "/", deadline=soon(1.5), max_body=1000)
    assert time.monotonic() - start < 0.5


@pytest.mark.parametrize(("reply", "why"), [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"400\r\n" + bytes(1024) + b"\r\n" * 2, "chunked"),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + bytes(5000), "more than 1000 bytes"),
    (b"HTTP/1.1 200 OK\r\nX-Flood: " + b"a" * 40000, "headers longer than"),
    (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not an HTTP reply"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", "malformed Content-Length"),
], ids=["chunked over the cap", "unframed over the cap", "endless headers", "not HTTP", "negative length"])
def test_malformed_or_oversized_replies_are_refused(serve: Callable[[Script], RawServer], reply: bytes, why: str) -> None:
    def send(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(reply)
        time.sleep(0.5)

    with pytest.raises(WireError, match=why):
        Connection(serve(send).url).request("GET", "/", deadline=soon(), max_body=1000)


def test_a_chunked_reply_within_the_cap_is_read(serve: Callable[[Script], RawServer]) -> None:
    def chunked(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n")

    assert Connection(serve(chunked).url).request("GET", "/", deadline=soon(), max_body=10).body == b"abcde"


def test_nobody_listening_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(WireError, match="unreachable"):
        Connection(f"http://127.0.0.1:{port}").request("GET", "/", deadline=soon(), max_body=10)
