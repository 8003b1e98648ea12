"""What the device says about itself over time: the event log (device_event) and the device_status
heartbeat (its fields come from device/health.py `status_fields`; temperatures where readable)."""

from __future__ import annotations

import glob
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from device.metrics.points import FieldValue, Point
from device.redact import redact


def _read_milli_celsius(path: str) -> float | None:
    try:
        value = float(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None
    return value / 1000.0 if value > 200 else value


def temperatures() -> dict[str, float]:
    """cpu_temp_c / gpu_temp_c from /sys thermal zones (Jetson names them CPU-therm, GPU-therm)."""
    out: dict[str, float] = {}
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        try:
            kind = Path(zone, "type").read_text().strip().lower()
        except OSError:
            continue
        value = _read_milli_celsius(f"{zone}/temp")
        if value is None:
            continue
        if "gpu" in kind:
            out.setdefault("gpu_temp_c", value)
        elif any(word in kind for word in ("cpu", "x86_pkg", "soc", "acpitz")):
            out.setdefault("cpu_temp_c", value)
    return out


class Heartbeat:
    """Writes a `device_status` point every `interval_s` from whatever `snapshot` reports.

    Kept apart from the frame loop so the loop only asks `beat_if_due()`; what a heartbeat
    holds is device/health.py `status_fields`, wired in device/app.py."""

    def __init__(self, interval_s: float, snapshot: Callable[[], dict[str, FieldValue]],
                 store: Callable[[list[Point]], None], tags: dict[str, str] | Callable[[], dict[str, str]]) -> None:
        self.interval_s = interval_s
        self._snapshot = snapshot
        self._store = store
        self._tags = tags
        self._next = 0.0

    def start(self, first_after_s: float = 2.0) -> None:
        """The first beat comes shortly after start (once the camera had a chance to open)."""
        self._next = time.monotonic() + min(first_after_s, self.interval_s)

    def beat_if_due(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + self.interval_s
        fields = self._snapshot()
        fields.update(temperatures())
        tags = self._tags() if callable(self._tags) else self._tags  # a callable: tags that change (experiment)
        self._store([Point("device_status", tags, fields, int(time.time() * 1e6))])


class EventLog:
    """device_event points (and the last 50 for /healthz); safe from any thread. Redacted: an
    event may quote a camera URI."""

    def __init__(self, store: Callable[[list[Point]], None] | None, tags: Callable[[], dict[str, str]]) -> None:
        self.recent: deque[dict[str, Any]] = deque(maxlen=50)
        self._store = store
        self._tags = tags

    def __call__(self, kind: str, message: str, tags: dict[str, str] | None = None, when: float | None = None) -> None:
        message = redact(message)
        when = time.time() if when is None else when
        self.recent.append({"time": when, "kind": kind, "message": message})
        if self._store is not None:
            self._store([Point("device_event", {**self._tags(), **(tags or {}), "kind": kind}, {"message": message}, int(when * 1e6))])
