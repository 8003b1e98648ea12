"""The device's Flask app factory: live stream + health always, the panel when asked for."""

from __future__ import annotations

import logging
import threading

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from device.api import DeviceRuntime
from device.config import DeviceConfig

log = logging.getLogger(__name__)


def create_app(config: DeviceConfig, runtime: DeviceRuntime, with_panel: bool = True) -> Flask:
    """The runtime is reachable by every blueprint as current_app.extensions["scopehive.runtime"]."""
    from device.live import bp as live_bp

    app = Flask("device")
    app.config["SCOPEHIVE"] = app.config["SCOPEHIVE_CONFIG"] = config
    app.config["SCOPEHIVE_JPEG_QUALITY"] = config.jpeg_quality
    app.extensions["scopehive.runtime"] = runtime
    app.register_blueprint(live_bp)
    if with_panel:
        from device import panel

        panel.init_app(app)
    return app


class WebServer:
    """A threaded WSGI server on its own daemon thread (the frame loop owns the main thread)."""

    def __init__(self, app: Flask, host: str, port: int) -> None:
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="web", daemon=True)

    def start(self) -> WebServer:
        self._thread.start()
        log.info("serving stream, stats and panel on http://%s:%d", self._server.host, self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
