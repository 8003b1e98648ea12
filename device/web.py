"""The device's Flask app factory (live stream + health always, the panel when asked for) and the
production WSGI server it runs in.

The server is waitress: pure Python (the same wheel on a Jetson and on x86, no C toolchain), a
bounded pool of worker threads, request bodies past 512 KB spooled to disk instead of memory, and
slow readers throttled (the stream waits) instead of buffered without end. Why waitress and not
cheroot or gunicorn: docs/security.md ("The web server").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from device import web_json
from device.client_limits import EXTENSION_KEY, ClientLimit
from device.config import DeviceConfig
from device.redact import redact_request_target
from device.web_protocol import DeviceRuntime
from device.web_settings import WebSettings

log = logging.getLogger(__name__)
access_log = logging.getLogger("device.access")
M_ARENA_MAX = -8  # glibc mallopt() parameter
OUTPUT_HIGH_WATERMARK = 1024 * 1024  # a viewer more than ~1 MB behind pauses its stream (no unbounded buffers)


def create_app(config: DeviceConfig, runtime: DeviceRuntime, with_panel: bool = True) -> Flask:
    """The runtime is reachable by every blueprint as current_app.extensions["scopehive.runtime"]."""
    from device import openapi
    from device.live import bp as live_bp

    app = Flask("device")
    web_json.install(app)  # standard JSON only: no NaN/Infinity out, no 500 for hostile JSON in
    app.config["SCOPEHIVE"] = app.config["SCOPEHIVE_CONFIG"] = config
    app.config["SCOPEHIVE_JPEG_QUALITY"] = config.jpeg_quality
    app.extensions["scopehive.runtime"] = runtime
    app.extensions[EXTENSION_KEY] = {
        "stream": ClientLimit("stream", config.web.max_stream_clients, "web.max_stream_clients"),
        "SSE": ClientLimit("live-statistics (SSE)", config.web.max_sse_clients, "web.max_sse_clients"),
    }
    app.register_blueprint(live_bp)
    app.register_blueprint(openapi.bp)  # /openapi.json: the JSON API as it is wired (device/openapi.py)
    if with_panel:
        from device import panel

        panel.init_app(app)
    return app


class AccessLog:
    """WSGI middleware: one line per request on the `device.access` logger, query redacted (a stream
    token in `?token=` shows as `token=***`, however its name is percent-encoded: `?tok%65n=` is the
    same parameter to Flask); headers, cookies and bodies are never logged."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def logging_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            target = redact_request_target(environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
            access_log.info("%s %s %s %s", environ.get("REMOTE_ADDR", "-"), environ.get("REQUEST_METHOD", "-"),
                            target, status.split(" ", 1)[0])
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self._app(environ, logging_start_response)


def _fewer_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives every thread that mallocs its own arena and rarely hands arena memory back: with a
    pool of dozens of workers passing JPEG buffers around, that alone kept >100 MB after viewers left.
    A couple of shared arenas cost nothing measurable here. No-op off glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "mallopt"):
            libc.mallopt(M_ARENA_MAX, arenas)
    except OSError:
        pass


class WebServer:
    """waitress on its own daemon thread (the frame loop owns the main thread)."""

    def __init__(self, app: Flask, host: str, port: int, settings: WebSettings | None = None) -> None:
        from waitress.server import create_server

        _fewer_malloc_arenas()  # before the worker threads exist
        settings = settings or WebSettings()
        wsgi: Any = AccessLog(app) if settings.access_log else app
        self.threads = settings.worker_threads()
        self._server: Any = create_server(
            wsgi, host=host, port=port, threads=self.threads, connection_limit=settings.connection_limit,
            asyncore_use_poll=True,  # select() stops at 1,024 descriptors
            outbuf_high_watermark=OUTPUT_HIGH_WATERMARK, ident="scopehive", expose_tracebacks=False,
        )
        self.host, self.port = host, int(self._server.effective_port)
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)

    def start(self) -> WebServer:
        self._thread.start()
        log.info("serving stream, stats and panel on http://%s:%d (%d workers)", self.host, self.port, self.threads)
        return self

    def stop(self) -> None:
        """Stop accepting, end open streams, let the workers finish (bounded wait)."""
        from waitress import wasyncore

        self._server.task_dispatcher.shutdown(timeout=5)
        wasyncore.close_all(self._server._map)
        self._thread.join(timeout=5)
