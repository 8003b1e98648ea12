"""A model whose only backend is the hive, loaded as soon as a server answers.

With `hive.local_backend: none` a model cannot warm up while no hive server answers, so a device
that boots with the hive down fails that load. `ModelStandby` keeps trying, every probe interval,
and hands the model over the moment it loads; any other reason for the failure (a broken bundle)
will not mend itself, so it stops there and keeps the reason.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from device.hive.router import HiveUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


def waits_for_hive(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) is the hive not answering."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, HiveUnavailable):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class ModelStandby(Generic[T]):
    """Calls `load` every `interval_s` until it returns, then `loaded(model)`; stops on a failure
    that is not the hive's (kept in `error`) or on `stop()`."""

    def __init__(self, load: Callable[[], T], loaded: Callable[[T], None], interval_s: float, name: str = "model") -> None:
        self._load, self._loaded, self.interval_s, self.name = load, loaded, interval_s, name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"hive-standby-{name}", daemon=True)
        self.error = "waiting for a hive server"
        self.attempts = 0

    @property
    def waiting(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> ModelStandby[T]:
        log.warning("%s waits for a hive server (hive.local_backend is 'none'): trying every %.1f s", self.name, self.interval_s)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.attempts += 1
            try:
                model = self._load()
            except Exception as exc:  # the loader's own errors: only the hive's are worth a retry
                self.error = str(exc)[:500]
                if not waits_for_hive(exc):
                    log.error("%s will not load, not retried: %s", self.name, self.error)
                    return
                continue
            self.error = ""
            if not self._stop.is_set():
                log.info("%s loaded: a hive server answers", self.name)
                self._loaded(model)
            return
