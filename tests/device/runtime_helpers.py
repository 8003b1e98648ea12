"""Helpers to run a Runtime in-process on a background thread (tests only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from device.config import DeviceConfig
from device.runtime import Runtime
from device.sources.capture import Capture


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def ready_runtime(config: DeviceConfig, capture: Capture | None = None) -> Runtime:
    """A runtime wired the way device/app.py wires it (no web server), ready for run()."""
    runtime = Runtime(config)
    runtime.init_outbox()
    runtime.init_experiments()
    runtime.init_source()
    if capture is not None:
        runtime.capture = capture
    runtime.init_model()
    runtime.start_sender()
    runtime.start_capture()
    return runtime


def start_runtime(config: DeviceConfig, capture: Capture | None = None) -> tuple[Runtime, threading.Thread]:
    runtime = ready_runtime(config, capture)
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    return runtime, thread
