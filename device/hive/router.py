"""Choosing a hive endpoint per frame: readiness probes, lowest recent latency, a per-frame
deadline, and giving up on an endpoint (until its probe says it is back) when it fails."""

from __future__ import annotations

import logging
import statistics
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from device.hive.client import EndpointClient, HiveError, Reply, ServedModel
from device.hive.settings import HiveSettings

log = logging.getLogger(__name__)
UNKNOWN_PERIOD_S = 1 / 3  # before the source's rate is known: a generous deadline
PROBE_TIMEOUT_S = 2.0  # for the whole readiness check of one endpoint


class HiveUnavailable(RuntimeError):
    """No endpoint answered this frame and there is no local model to fall back on."""


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

    def __init__(self, settings: HiveSettings, served: ServedModel, period_s: Callable[[], float | None]) -> None:
        self.settings = settings
        self.served = served
        self.card = served.card
        self._period_s = period_s
        self.states = {url: EndpointState(url) for url in settings.endpoints}
        self._clients: dict[tuple[int, str], EndpointClient] = {}  # one keep-alive connection per thread
        self._stop = threading.Event()
        # The probe thread holds the router weakly: a router nobody holds any more (a model whose
        # load failed after its backend was built) stops probing instead of living on.
        self._thread = threading.Thread(target=_probe_loop, args=(weakref.ref(self), self._stop, settings.probe_interval_s),
                                        name="hive-probe", daemon=True)
        weakref.finalize(self, self._stop.set)

    def start(self) -> HiveRouter:
        """Probe once now (a model loads already knowing where it can run), then in the background."""
        self.probe_once()
        self._thread.start()
        return self

    def stop(self) -> None:
        """No more probes, and the keep-alive connections closed (a frame still in flight on one
        gets an error and runs locally)."""
        self._stop.set()
        for client in list(self._clients.values()):
            client.close()
        self._clients.clear()

    def deadline_s(self, state: EndpointState | None = None) -> float:
        return self.deadline(state)[0]

    def deadline(self, state: EndpointState | None = None) -> tuple[float, str]:
        """This frame's deadline (s) and how it was chosen. A fixed `deadline_ms` wins; else it
        follows the endpoint's measured round trip (latency_factor x its median), never under
        `deadline_periods` frame periods nor over `deadline_max_ms`; before any round trip is
        measured it is `deadline_max_ms`. A LAN's 150-280 ms round trip at 15 frames/s so gets
        ~550 ms instead of 100 ms, and frames stop flapping to the fallback."""
        cfg = self.settings
        if cfg.deadline_ms is not None:
            return cfg.deadline_ms / 1000.0, "fixed (deadline_ms)"
        least = cfg.deadline_periods * (self._period_s() or UNKNOWN_PERIOD_S)
        if not cfg.latency_factor:
            return least, f"{cfg.deadline_periods:g} frame periods"
        state = state if state is not None else self.best()
        measured = state.latency_ms if state is not None else None
        if measured is None:
            return max(least, cfg.deadline_max_ms / 1000.0), "not measured yet (deadline_max_ms)"
        wanted = min(cfg.latency_factor * measured / 1000.0, cfg.deadline_max_ms / 1000.0)
        if wanted <= least:
            return least, f"{cfg.deadline_periods:g} frame periods (round trip {measured:.0f} ms)"
        return wanted, f"{cfg.latency_factor:g} x measured round trip {measured:.0f} ms" + (" (capped)" if wanted >= cfg.deadline_max_ms / 1000.0 else "")

    # ---- readiness -----------------------------------------------------------------------------
    def probe_once(self) -> None:
        """Check every endpoint (server ready, this model and version ready, its outputs)."""
        for state in self.states.values():
            client = EndpointClient(state.url, self.served)
            try:
                client.check(PROBE_TIMEOUT_S)
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

    # ---- inference -----------------------------------------------------------------------------
    def best(self) -> EndpointState | None:
        """The ready endpoint with the lowest recent latency (an untried one goes first)."""
        ready = [s for s in self.states.values() if s.ready]
        return min(ready, key=lambda s: s.latency_ms or 0.0) if ready else None

    def _client(self, url: str) -> EndpointClient:
        key = (threading.get_ident(), url)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = EndpointClient(url, self.served)
        return client

    def infer(self, data: np.ndarray, input_name: str) -> Routed | None:
        """The remote answer within the deadline (one deadline for the whole request), or None:
        the endpoint is then marked unusable until its next successful probe, and the caller
        runs the frame locally."""
        state = self.best()
        if state is None:
            return None
        deadline = self.deadline_s(state)
        start = time.perf_counter()
        try:
            reply = self._client(state.url).infer(data, input_name, self.settings.jpeg_quality, time.monotonic() + deadline)
        except HiveError as exc:
            if "too slow" in str(exc):  # at least the deadline: the measured deadline grows with a slower network
                state.latencies_ms.append(deadline * 1000.0)
            self.reject(state.url, str(exc))
            return None
        latency = (time.perf_counter() - start) * 1000.0
        if latency > deadline * 1000.0:
            state.latencies_ms.append(latency)
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

    def why_not(self) -> str:
        """Why no endpoint takes frames now, per endpoint, for /healthz and the error of a frame
        that could not run anywhere."""
        return "; ".join(f"{s.url}: {s.reason}" for s in self.states.values() if not s.ready) or "no endpoint ready"

    def health(self) -> dict[str, Any]:
        deadline, basis = self.deadline()
        return {"deadline_ms": round(deadline * 1000.0, 1), "deadline": basis, "transport": self.settings.transport,
                "endpoints": [{"url": s.url, "ready": s.ready, "reason": s.reason, "frames": s.frames, "failures": s.failures,
                               "latency_ms": None if s.latency_ms is None else round(s.latency_ms, 2)}
                              for s in self.states.values()]}


def _probe_loop(ref: weakref.ref[HiveRouter], stop: threading.Event, interval_s: float) -> None:
    while not stop.wait(interval_s):
        router = ref()
        if router is None:
            return
        try:
            router.probe_once()
        except Exception:  # a probe bug must never take the device down
            log.exception("hive probe failed")
        del router
