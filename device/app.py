"""Start-up wiring of the device, one flat list of steps: read it top to bottom to see the system."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from device.config import DeviceConfig
from device.fleet.watcher import start_watcher
from device.reload import ModelReloader
from device.runtime import Runtime
from device.web import WebServer, create_app

log = logging.getLogger(__name__)


def run_device(config: DeviceConfig, reload_config: Callable[[], DeviceConfig] | None = None,
               config_file: Path | None = None) -> int:
    """Run until SIGTERM/SIGINT, the end of a finite source, or `config.max_frames` frames.
    `reload_config` re-reads file + environment + flags; with it, model changes apply live."""
    runtime = Runtime(config)
    runtime.init_outbox()
    runtime.init_experiments()
    runtime.init_source()
    runtime.init_model()
    runtime.start_sender()
    runtime.start_capture()
    watcher = start_watcher(config.fleet, runtime, config.data_dir)  # None unless fleet.enabled
    reloader = ModelReloader(runtime, reload_config, config_file).start() if reload_config else None
    web = WebServer(create_app(config, runtime), config.host, config.port, config.web).start() if config.port else None

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping after this frame", signum)
        runtime.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        processed = runtime.run(config.max_frames)
    finally:
        if watcher is not None:
            watcher.stop()
        if reloader is not None:
            reloader.stop()
        runtime.shutdown()
        if web is not None:
            web.stop()
    log.info("processed %d frames", processed)
    if runtime.capture is not None and runtime.capture.state == "failed":
        log.error("the source failed for good: %s", runtime.capture.error)
        return 1
    return 0
