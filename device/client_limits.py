"""Caps on long-lived clients (MJPEG viewers, SSE listeners): each holds a worker thread while it
watches, so past the cap a client is told 503 at once instead of queueing behind the others."""

from __future__ import annotations

import threading
from collections.abc import Callable

from flask import Response, current_app

EXTENSION_KEY = "scopehive.client_limits"


class ClientLimit:
    """A counter with a ceiling; `try_acquire()` is False at the ceiling, `release()` frees a place."""

    def __init__(self, kind: str, cap: int, setting: str) -> None:
        self.kind = kind
        self.cap = cap
        self.setting = setting
        self.active = 0
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            if self.active >= self.cap:
                return False
            self.active += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.active = max(0, self.active - 1)


def capped(kind: str, build: Callable[[], Response]) -> Response:
    """The response of `build()` holding one place of the `kind` limit until the server closes it
    (client gone or stream over), or a 503 that says which setting raises the cap."""
    limit: ClientLimit | None = current_app.extensions.get(EXTENSION_KEY, {}).get(kind)
    if limit is None:
        return build()
    if not limit.try_acquire():
        message = (f"too many {limit.kind} clients: {limit.cap} are connected, the most this device serves. "
                   f"Try again later, or raise {limit.setting}.\n")
        return Response(message, status=503, mimetype="text/plain", headers={"Retry-After": "10", "Cache-Control": "no-store"})
    try:
        response = build()
    except BaseException:
        limit.release()
        raise
    response.call_on_close(limit.release)
    return response
