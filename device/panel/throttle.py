"""Slowing down password and setup-code guessing: failed attempts per client and overall.

Each login try costs a scrypt hash (about 0.5 s of CPU on a Jetson) and the first-start setup code
is only 32 bits, so unthrottled guessing both burns the device's CPU and eventually succeeds. After
`per_client` failures within `window_s` a client waits until the oldest one ages out; after
`overall` failures from everyone (a proxy in front makes all clients one address) everybody waits.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class Throttle:
    """Sliding windows of failure times; `retry_after` says how long a client must wait (0 = go)."""

    def __init__(self, per_client: int, overall: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_client = per_client
        self.overall = overall
        self.window_s = window_s
        self.clock = clock
        self._lock = threading.Lock()
        self._clients: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    def _trim(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window_s:
            times.popleft()

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may try again; 0 when it may try now."""
        now = self.clock()
        with self._lock:
            self._trim(self._all, now)
            mine = self._clients.get(client, deque())
            self._trim(mine, now)
            waits = [0.0]
            if len(mine) >= self.per_client:
                waits.append(mine[0] + self.window_s - now)
            if len(self._all) >= self.overall:
                waits.append(self._all[0] + self.window_s - now)
            return max(waits)

    def failed(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            self._clients.setdefault(client, deque()).append(now)
            self._all.append(now)
            if len(self._clients) > 10_000:  # many addresses: forget the quiet ones, keep memory bounded
                for key in [k for k, v in self._clients.items() if not v or v[-1] <= now - self.window_s]:
                    del self._clients[key]

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)
