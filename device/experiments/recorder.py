"""The frame loop's side of experiments: tags, object points, the buffered record, start/stop marks.

The loop calls `tags()` and `record()` per frame. `record()` commits the frame's rows to the
store at once, before the loop commits the frame's points to the outbox (device/publish.py calls
it first), in the same WAL + synchronous=NORMAL mode: whatever a crash or SIGKILL leaves in the
outbox, the record holds too, so the exported CSV never has fewer frames than the metrics (a
per-frame commit costs tens of microseconds; the outbox pays the same). Only when that commit
fails (a locked or full disk) are the rows buffered for the writer thread to retry. That thread
follows changes made by another process (the CLI) and writes each start/stop `device_event` and
Grafana annotation exactly once, even across restarts (the store remembers which were written).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from device.detections import Detections
from device.experiments.quality import FrameQuality
from device.experiments.store import Experiment, ExperimentRequest, ExperimentStore
from device.metrics.points import Point

log = logging.getLogger(__name__)
MAX_WAITING_FRAMES = 30 * 60 * 10  # ten minutes at 30 fps held in memory while the store refuses
EventSink = Callable[[str, str, dict[str, str], float], None]  # kind, message, extra tags, time
MarkSink = Callable[[Experiment, str], object]


class ExperimentRecorder:
    """Owns the running experiment for one device; thread-safe (loop, web and writer threads)."""

    def __init__(self, store: ExperimentStore, device: str, project: str, event: EventSink,
                 mark: MarkSink | None = None, flush_s: float = 1.0) -> None:
        self.store = store
        self._mark = mark
        self.device, self.project = device, project
        self._event = event
        self._flush_s = flush_s
        self._lock = threading.Lock()
        self._announce_lock = threading.Lock()
        self._frames: list[tuple[Any, ...]] = []
        self._objects: list[tuple[Any, ...]] = []
        self._active: Experiment | None = store.active()  # still running after a restart: same id
        self._stopped: Experiment | None = None  # the one just stopped: a frame tagged before the stop still belongs to it
        self._tagged = threading.local()  # per thread: the experiment id its last tags() returned ("" none)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.flush_errors = 0
        self.recent_sizes: deque[tuple[str, float]] = deque(maxlen=3000)  # (class, size) for the live histogram
        self.recent_unit = "px"

    # ---- control (web and CLI side) --------------------------------------------------------------
    @property
    def active(self) -> Experiment | None:
        return self._active

    def start(self, request: ExperimentRequest, provenance: dict[str, Any]) -> Experiment:
        with self._lock:
            experiment = self.store.start(request, self.device, self.project, provenance)
            self._active = experiment
        self.announce()
        return experiment

    def stop(self) -> Experiment:
        """Stop; the frames buffered so far are committed first, so the summary is complete."""
        with self._lock:
            experiment = self.store.stop()
            self._stopped = experiment  # first: a loop that sees no active one must find this
            self._active = None
        self.flush()
        self.announce()
        return experiment

    # ---- the frame loop ----------------------------------------------------------------------------
    def tags(self) -> dict[str, str]:
        """The running experiment's tag. The calling thread remembers which it got, so the frame's
        `record()` right after goes to the same experiment even if a stop or start raced between
        them: the record and the frame's points never disagree."""
        active = self._active
        self._tagged.id = active.id if active is not None else ""
        return {"experiment": active.id} if active is not None else {}

    def um_per_pixel(self, default: float | None) -> float | None:
        active = self._active
        return active.um_per_pixel if active is not None and active.calibration is not None else default

    def record(self, ts_us: int, index: int, quality: FrameQuality, analysed: str, detections: Detections | None,
               context: FrameContext) -> list[Point]:
        """Commit the frame (and its objects) to the running experiment's record; returns its
        `object` points (none outside an experiment). Objects are only recorded for analysed
        frames. The experiment is the one `tags()` gave this frame's points (see there)."""
        if detections is not None and len(detections):
            self._remember_sizes(detections, context)
        active = self._experiment_of_frame()
        if active is None:
            return []
        counts = None
        if detections is not None:
            per_class = np.bincount(detections.class_ids, minlength=len(context.classes)).tolist()
            counts = json.dumps(dict(zip(context.classes, per_class, strict=False)), separators=(",", ":"))
        frame = (active.id, ts_us, index, analysed, _finite(quality.focus), _finite(quality.saturated),
                 _finite(quality.dark), len(detections) if detections is not None else None, counts,
                 context.model, context.model_version, context.um_per_pixel, context.fov_mm2,
                 json.dumps(context.image, separators=(",", ":")) if context.image else None, context.calibration or None,
                 json.dumps(context.estimates, separators=(",", ":")) if detections is not None and context.estimates is not None
                 else None)
        rows, points = self._objects_of(active.id, ts_us, detections, context) if detections is not None else ([], [])
        self._commit(frame, rows)
        return points

    def _experiment_of_frame(self) -> Experiment | None:
        """The experiment this thread's last `tags()` named (running, or stopped since), else the
        running one (a caller that never asked for tags)."""
        tagged: str | None = getattr(self._tagged, "id", None)
        self._tagged.id = None
        active, stopped = self._active, self._stopped
        if tagged is None:
            return active
        for candidate in (active, stopped):
            if candidate is not None and candidate.id == tagged:
                return candidate
        return None

    def _commit(self, frame: tuple[Any, ...], rows: list[tuple[Any, ...]]) -> None:
        """Durable now (before the frame's points reach the outbox); buffered for the writer thread
        only when the store refuses, so a busy disk never stops the loop for good."""
        if not self._frames and not self._objects:
            try:
                self.store.add_record([frame], rows)
                return
            except Exception as exc:
                self.flush_errors += 1
                log.warning("experiment record commit failed, buffering for retry: %s", exc)
        with self._lock:  # the writer thread swaps the buffers under the same lock
            self._frames.append(frame)
            self._objects.extend(rows)

    def _remember_sizes(self, detections: Detections, context: FrameContext) -> None:
        """Object sizes (sqrt(width x height), µm when calibrated) of recent analysed frames."""
        unit = "µm" if context.um_per_pixel else "px"
        if unit != self.recent_unit:
            self.recent_sizes.clear()
            self.recent_unit = unit
        sizes = np.sqrt(detections.width * detections.height) * (context.um_per_pixel or 1.0)
        names = context.classes
        self.recent_sizes.extend((names[c] if c < len(names) else str(c), s)
                                 for c, s in zip(detections.class_ids.tolist(), sizes.tolist(), strict=True))

    def live_histogram(self, bins: int = 20) -> dict[str, Any]:
        """Per-class histogram of the recent sizes on shared bins (the Live page)."""
        recent = list(self.recent_sizes)
        if not recent:
            return {"unit": self.recent_unit, "edges": [], "classes": {}, "objects": 0}
        top = max(s for _, s in recent)
        edges = np.linspace(0.0, top * 1.05 or 1.0, bins + 1)
        classes: dict[str, list[int]] = {}
        for name in dict.fromkeys(n for n, _ in recent):
            values = [s for n, s in recent if n == name]
            classes[name] = np.histogram(values, bins=edges)[0].tolist()
        return {"unit": self.recent_unit, "edges": [round(float(e), 3) for e in edges], "classes": classes,
                "objects": len(recent)}

    def _objects_of(self, experiment: str, ts_us: int, detections: Detections,
                    context: FrameContext) -> tuple[list[tuple[Any, ...]], list[Point]]:
        """Record rows and `object` points (time + i µs: one point per object) of one frame."""
        um, names = context.um_per_pixel, context.classes
        tag_sets = {name: {"device": self.device, "project": self.project, "experiment": experiment, "class": name}
                    for name in names}  # shared per class: points never change their tags
        w, h = detections.width, detections.height
        rows: list[tuple[Any, ...]] = []
        points: list[Point] = []
        columns = [detections.xyxy.tolist(), detections.scores.astype(np.float64).round(4).tolist(), detections.class_ids.tolist(),
                   w.astype(np.float64).round(2).tolist(), h.astype(np.float64).round(2).tolist()]
        if um:
            columns += [(w * um).tolist(), (h * um).tolist(), (w * h * um * um).tolist(), (np.sqrt(w * h) * um).tolist()]
        else:
            columns += [[None] * len(w)] * 4
        for i, (box, score, cid, wp, hp, wu, hu, au, su) in enumerate(zip(*columns, strict=True)):
            name = names[cid] if cid < len(names) else str(cid)
            fields: dict[str, int | float | str | bool] = {"width_px": wp, "height_px": hp, "score": score}
            if um:
                fields.update(width_um=wu, height_um=hu, area_um2=au, size_um=su)
            rows.append((experiment, ts_us, name, *box, wu, hu, au, score))
            tags = tag_sets.get(name) or {"device": self.device, "project": self.project, "experiment": experiment, "class": name}
            points.append(Point("object", tags, fields, ts_us + i))
        return rows, points

    # ---- writer thread ---------------------------------------------------------------------------
    def start_thread(self) -> ExperimentRecorder:
        self._thread = threading.Thread(target=self._loop, name="experiments", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self._flush_s):
            self.flush()
            self._follow_store()
            self.announce()

    def _follow_store(self) -> None:
        """Pick up a start/stop made by another process (the CLI). Under the lock that start/stop
        hold, so a read that raced with an in-process stop cannot bring the experiment back."""
        with self._lock:
            try:
                current = self.store.active()
            except Exception as exc:  # a locked or broken store must not stop the writer
                log.warning("cannot read the experiment store: %s", exc)
                return
            previous = self._active
            if (current.id if current else None) != (previous.id if previous else None):
                self._active = current
                if previous is not None and current is None:
                    try:
                        self._stopped = self.store.get(previous.id)
                    except Exception as exc:
                        log.warning("cannot read the stopped experiment %s: %s", previous.id, exc)

    def flush(self) -> None:
        with self._lock:
            frames, self._frames = self._frames, []
            objects, self._objects = self._objects, []
        if not frames and not objects:
            return
        try:
            self.store.add_record(frames, objects)
        except Exception as exc:
            self.flush_errors += 1
            with self._lock:  # keep them (in order, before newer ones) for the next try, within a bound
                self._frames[:0], self._objects[:0] = frames, objects
                lost = max(0, len(self._frames) - MAX_WAITING_FRAMES)
                del self._frames[:lost]
                lost_objects = max(0, len(self._objects) - 50 * MAX_WAITING_FRAMES)
                del self._objects[:lost_objects]
            log.error("cannot write the experiment record (%d rows waiting, %d lost; disk full?): %s",
                      len(frames) + len(objects), lost + lost_objects, exc)

    def announce(self) -> None:
        """Write the start/stop events not written yet (each once, in order)."""
        with self._announce_lock:
            self._announce()

    def _announce(self) -> None:
        try:
            pending = self.store.unmarked()
        except Exception as exc:
            log.warning("cannot read the experiment store: %s", exc)
            return
        for experiment, which in pending:
            when = experiment.started if which == "started" else (experiment.stopped or time.time())
            message = f"experiment '{experiment.request.name}' ({experiment.id}) {which}"
            self._event(f"experiment_{which}", message, {"experiment": experiment.id}, when)
            self.store.set_marked(experiment.id, which)
            if self._mark is not None:
                self._mark(experiment, which)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()


class FrameContext:
    """What the record needs to know about the frame's setting (model, classes, calibration and
    its source, and what the file says about the image: file, plane, stage position)."""

    __slots__ = ("classes", "model", "model_version", "um_per_pixel", "fov_mm2", "image", "calibration", "estimates")

    def __init__(self, classes: Sequence[str], model: str, model_version: str, um_per_pixel: float | None,
                 shape: tuple[int, ...], image: Mapping[str, Any] | None = None, calibration: str = "",
                 estimates: Mapping[str, int] | None = None) -> None:
        self.classes = tuple(classes)
        self.model, self.model_version = model, model_version
        self.um_per_pixel = um_per_pixel
        self.fov_mm2 = shape[0] * shape[1] * um_per_pixel**2 / 1e6 if um_per_pixel and len(shape) >= 2 else None
        self.image = dict(image or {})
        self.calibration = calibration
        self.estimates = dict(estimates) if estimates is not None else None  # count_estimate per class (count_models)


def _finite(value: float) -> float | None:
    return value if value == value else None  # NaN (gates off) -> NULL
