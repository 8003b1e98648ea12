"""A TCP forwarder that starts closed: while closed, connecting to its port is refused exactly as
when a server is down; `open()` starts forwarding to the real service (tests only)."""

from __future__ import annotations

import select
import socket
import socketserver
import threading

from tests.device.metrics.private_influx import free_port


class TcpGate:
    """Reserve a loopback port now; `open()` later forwards it to `upstream` (host, port)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._server: socketserver.ThreadingTCPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> None:
        upstream = self.upstream

        class Pipe(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with socket.create_connection(upstream, timeout=10) as far:
                    _pump(self.request, far)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Pipe)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="tcp-gate", daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _pump(near: socket.socket, far: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    ends = {near: far, far: near}
    while True:
        readable, _, _ = select.select(list(ends), [], [], 30)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            ends[sock].sendall(data)
