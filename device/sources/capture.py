"""The capture thread: keeps only the newest frame, counts what it drops, and reconnects by itself.

A camera that vanishes or a stream that breaks never stops the device: the thread reports the
loss (state `reconnecting` and a `source_lost` event), keeps serving the last frame, and reopens
with exponential backoff until the source is back (`source_restored`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from device.metrics.stats import FpsMonitor
from device.redact import redact
from device.sources.base import FrameSource, ImageMeta, SourceError, SourceImage

log = logging.getLogger(__name__)
EventSink = Callable[[str, str], None]


@dataclass(frozen=True)
class Frame:
    image: np.ndarray
    index: int
    captured_at: float  # time.time(): the metric timestamp
    captured_mono: float  # time.perf_counter(): for latency
    meta: ImageMeta = field(default_factory=ImageMeta)  # what the file or camera says: calibration, plane, file

    @property
    def um_per_pixel(self) -> float | None:
        """The pixel size the image's own metadata gives (OME, ImageJ), None when it gives none."""
        return self.meta.um_per_pixel

    @property
    def acquired_at(self) -> float | None:
        """When the acquisition software took the image (epoch s), None when the file does not say."""
        return self.meta.acquired_at


class Capture:
    """Runs `source` on a daemon thread; `get()` hands the consumer the newest unseen frame."""

    def __init__(
        self, source: FrameSource, backoff: tuple[float, float] = (0.5, 30.0), events: EventSink | None = None, auto_done: bool = True
    ) -> None:
        """`auto_done`: a frame counts as done (journaled by an acquisition folder) when `get()` hands
        it over; with False the consumer calls `done(frame)` once its results are stored, so a
        crash in between repeats the frame instead of losing it."""
        self.source = source
        self.auto_done = auto_done
        self.state = "starting"  # starting | ok | reconnecting | ended | failed
        self.error = ""
        self.frames = 0
        self.dropped = 0
        self.reconnects = 0
        self._backoff = backoff
        self._events = events or (lambda kind, message: None)
        self._slot: Frame | None = None
        self._rate = FpsMonitor()  # the source's own frame rate (the remote deadline counts in its periods)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)

    def start(self) -> Capture:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        interrupt = getattr(self.source, "interrupt", None)  # a folder waiting for its next file
        if interrupt is not None:
            interrupt()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=5)
        self.source.close()

    def get(self, timeout: float = 1.0) -> Frame | None:
        """The newest frame not yet returned, waiting up to `timeout`; None if none came."""
        with self._cond:
            if self._slot is None:
                self._cond.wait_for(lambda: self._slot is not None or self._stop.is_set() or self.state in ("ended", "failed"), timeout)
            frame, self._slot = self._slot, None
            self._cond.notify_all()
        if frame is not None and self.auto_done:
            self.done(frame)
        return frame

    def done(self, frame: Frame) -> None:
        """Tell the source that `frame` is dealt with (an acquisition folder journals it, so a
        restart neither repeats nor skips it); nothing for sources without a journal."""
        acknowledge = getattr(self.source, "acknowledge", None)
        if acknowledge is not None and frame.meta.receipt:
            acknowledge(frame.meta)

    @property
    def period_s(self) -> float | None:
        """Seconds between a live source's frames, once a few came; None before, and always for a
        file or folder (it waits for the loop: it has no pace of its own)."""
        if not self.source.live:
            return None
        fps = self._rate.fps
        return 1.0 / fps if fps > 0 else None

    @property
    def finished(self) -> bool:
        """True when a finite source has ended (or failed for good) and its last frame was taken."""
        return self.state in ("ended", "failed") and self._slot is None

    def _publish(self, item: np.ndarray | SourceImage) -> None:
        image, meta = (item.image, item.meta) if isinstance(item, SourceImage) else (item, ImageMeta())
        with self._cond:
            if not self.source.live:  # hand over (and time-stamp) when the detector is ready for it
                self._cond.wait_for(lambda: self._slot is None or self._stop.is_set())
            elif self._slot is not None:
                self.dropped += 1
            self._slot = Frame(image, self.frames, time.time(), time.perf_counter(), meta)
            self._rate.tick()
            self.frames += 1
            self._cond.notify_all()

    def _set_state(self, state: str, error: str = "") -> None:
        error = redact(error)  # a driver's message may quote the URI with its password
        previous, self.state, self.error = self.state, state, error
        if state == "reconnecting" and previous != "reconnecting":
            log.warning("source lost: %s", error)
            self._events("source_lost", error)
        elif state == "failed":
            log.error("source failed for good: %s", error)
            self._events("source_failed", error)
        elif state == "ok" and previous == "reconnecting":
            log.info("source restored: %s", self.source.name)
            self._events("source_restored", f"{self.source.name} is back after {self.reconnects} attempts")
        with self._cond:
            self._cond.notify_all()

    def _run(self) -> None:
        delay = self._backoff[0]
        while not self._stop.is_set():
            try:
                self.source.open()
                self._set_state("ok")
                delay = self._backoff[0]
                if self._pump():
                    self._set_state("ended")
                    return
            except SourceError as exc:
                self.source.close()
                if exc.permanent:
                    self._set_state("failed", str(exc))
                    return
                self._set_state("reconnecting", str(exc))
                self.reconnects += 1
                self._stop.wait(delay)
                delay = min(delay * 2, self._backoff[1])
            except Exception as exc:  # a driver bug must not kill the device: report and retry
                self.source.close()
                self._set_state("reconnecting", f"{self.source.name}: {type(exc).__name__}: {exc}")
                self._stop.wait(delay)
                delay = min(delay * 2, self._backoff[1])

    def _pump(self) -> bool:
        """Read until stopped (False) or the finite source ended (True); SourceError propagates."""
        while not self._stop.is_set():
            image = self.source.read()
            if image is None:
                return True
            self._publish(image)
        return False
