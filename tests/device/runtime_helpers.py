"""Helpers to run a device in-process on a background thread (tests only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from device.app import build_device
from device.config import DeviceConfig
from device.facade import DeviceFacade
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
    """A device wired the way device/app.py wires it (no web server), its threads started, ready for run()."""
    return build_device(config, capture).start()


def start_runtime(config: DeviceConfig, capture: Capture | None = None) -> tuple[Runtime, threading.Thread]:
    runtime = ready_runtime(config, capture)
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    return runtime, thread


def facade(runtime: Runtime) -> DeviceFacade:
    """The web side's view of the running device (what create_app gets)."""
    return DeviceFacade(runtime.parts)
