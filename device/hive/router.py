"""Choosing a hive endpoint per frame: readiness probes, lowest recent latency, a per-frame
deadline, and giving up on an endpoint (until its probe says it is back) when it fails."""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from device.hive.client import EndpointClient, HiveError, Reply
from device.hive.settings import HiveSettings
from device.models.bundle import ModelCard

log = logging.getLogger(__name__)
UNKNOWN_PERIOD_S = 1 / 3  # before the source's rate is known: a generous deadline
PROBE_TIMEOUT_S = 2.0


@dataclass
class EndpointState:
    """What the device knows about one endpoint; `reason` says why it is not used."""

    url: str
    ready: bool = False
    reason: str = "not probed yet"
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=20))
    frames: int = 0
    failures: int = 0

    @property
    def latency_ms(self) -> float | None:
        return statistics.median(self.latencies_ms) if self.latencies_ms else None


@dataclass(frozen=True)
class Routed:
    reply: Reply
    url: str
    latency_ms: float


class HiveRouter:
    """Sends frames of one bundle to the best ready endpoint; None = use the local model."""

    def __init__(self, settings: HiveSettings, card: ModelCard, expected_outputs: list[str],
                 period_s: Callable[[], float | None]) -> None:
        self.settings = settings
        self.card = card
        self._outputs = expected_outputs
        self._period_s = period_s
        self.states = {url: EndpointState(url) for url in settings.endpoints}
        self._clients: dict[tuple[int, str], EndpointClient] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe_loop, name="hive-probe", daemon=True)

    def start(self) -> HiveRouter:
        """Probe once now (a model loads already knowing where it can run), then in the background."""
        self.probe_once()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def deadline_s(self) -> float:
        if self.settings.deadline_ms is not None:
            return self.settings.deadline_ms / 1000.0
        period = self._period_s() or UNKNOWN_PERIOD_S
        return self.settings.deadline_periods * period

    # ---- readiness -----------------------------------------------------------------------------
    def probe_once(self) -> None:
        """Check every endpoint (server ready, this model and version ready, its outputs)."""
        for state in self.states.values():
            client = EndpointClient(state.url, self.card, self.settings.transport, PROBE_TIMEOUT_S, self._outputs)
            try:
                client.check()
            except HiveError as exc:
                self._set(state, False, str(exc))
            else:
                self._set(state, True, "")
            finally:
                client.close()

    def _set(self, state: EndpointState, ready: bool, reason: str) -> None:
        if ready and not state.ready:
            log.info("hive endpoint %s serves %s: using it", state.url, self.card.label)
        elif not ready and (state.ready or reason != state.reason):
            log.warning("hive endpoint %s not used for %s: %s", state.url, self.card.label, reason)
        state.ready, state.reason = ready, reason

    def _probe_loop(self) -> None:
        while not self._stop.wait(self.settings.probe_interval_s):
            try:
                self.probe_once()
            except Exception:  # a probe bug must never take the device down
                log.exception("hive probe failed")

    # ---- inference -----------------------------------------------------------------------------
    def best(self) -> EndpointState | None:
        """The ready endpoint with the lowest recent latency (an untried one goes first)."""
        ready = [s for s in self.states.values() if s.ready]
        return min(ready, key=lambda s: s.latency_ms or 0.0) if ready else None

    def _client(self, url: str, deadline: float) -> EndpointClient:
        """One client per thread and endpoint (gevent), rebuilt when the deadline moved by > 25 %."""
        key = (threading.get_ident(), url)
        client = self._clients.get(key)
        if client is None or abs(client.timeout_s - deadline) > 0.25 * deadline:
            if client is not None:
                client.close()
            client = EndpointClient(url, self.card, self.settings.transport, deadline, self._outputs)
            self._clients[key] = client
        return client

    def infer(self, tensor: np.ndarray, input_name: str) -> Routed | None:
        """The remote answer within the deadline, or None (the endpoint is then marked unusable
        until its next successful probe, and the caller runs the frame locally)."""
        state = self.best()
        if state is None:
            return None
        deadline = self.deadline_s()
        start = time.perf_counter()
        try:
            reply = self._client(state.url, deadline).infer(tensor, input_name, self.settings.jpeg_quality)
        except HiveError as exc:
            self.reject(state.url, str(exc))
            return None
        latency = (time.perf_counter() - start) * 1000.0
        if latency > deadline * 1000.0:
            self.reject(state.url, f"too slow: {latency:.0f} ms > deadline {deadline * 1000:.0f} ms")
            return None
        state.latencies_ms.append(latency)
        state.frames += 1
        return Routed(reply, state.url, latency)

    def reject(self, url: str, reason: str) -> None:
        """Stop using `url` until a probe finds it ready again (a failed frame, malformed outputs)."""
        state = self.states[url]
        state.failures += 1
        client = self._clients.pop((threading.get_ident(), url), None)
        if client is not None:
            client.close()  # a timed-out connection may still deliver the late answer: never reuse it
        self._set(state, False, reason)

    def health(self) -> dict[str, Any]:
        return {"deadline_ms": round(self.deadline_s() * 1000.0, 1), "transport": self.settings.transport,
                "endpoints": [{"url": s.url, "ready": s.ready, "reason": s.reason, "frames": s.frames, "failures": s.failures,
                               "latency_ms": None if s.latency_ms is None else round(s.latency_ms, 2)}
                              for s in self.states.values()]}
