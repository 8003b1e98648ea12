"""A frame's result, published: points into the durable outbox, the experiment's record, the
track log and the live board. The loop calls `Publisher.publish(result)` once per frame."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from device.analysis import Analysis
from device.board import LiveBoard
from device.detections import Detections
from device.experiments.recorder import ExperimentRecorder, FrameContext
from device.feed import FrameResult
from device.metrics.outbox import Outbox
from device.metrics.points import FieldValue, Point
from device.metrics.stats import FrameExtra, FrameMeasure, frame_points
from device.models.bundle import ModelCard
from device.pipeline import Pipeline
from device.sources.capture import Frame
from device.tracking.experiment import TrackLog
from device.web_protocol import LatestFrame

log = logging.getLogger(__name__)


class PointStore:
    """Commits points to the outbox; a failing disk is reported and counted, the stream goes on."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.errors = 0

    def __call__(self, points: list[Point]) -> None:
        try:
            self.outbox.add(points)
        except sqlite3.Error as exc:
            self.errors += 1
            if self.errors in (1, 10, 100) or self.errors % 1000 == 0:
                log.error("cannot write the outbox (%d failures; disk full or read-only?): %s", self.errors, exc)


class DeviceTags:
    """device, project and, while one runs, experiment: the tags every point starts from."""

    def __init__(self, device: str, project: str, experiments: ExperimentRecorder | None = None) -> None:
        self.base = {"device": device, "project": project}
        self.experiments = experiments

    def __call__(self) -> dict[str, str]:
        return {**self.base, **self.experiments.tags()} if self.experiments is not None else dict(self.base)


class Calibration:
    """µm per pixel now: the running experiment's calibration, else what the newest frame's own
    metadata says (OME-TIFF, ImageJ: nobody has to type it), else the configured default."""

    def __init__(self, default: float | None, experiments: ExperimentRecorder | None = None) -> None:
        self.default = default
        self.experiments = experiments
        self.from_file: float | None = None  # the newest frame's own pixel size
        self.file_source = ""  # what the file's metadata was ("OME PhysicalSizeX/Y of run.ome.tif")

    def seen(self, frame: Frame) -> None:
        self.from_file = frame.um_per_pixel
        self.file_source = frame.meta.calibration

    def __call__(self) -> float | None:
        return self.chosen()[0]

    def chosen(self) -> tuple[float | None, str]:
        """µm per pixel and where it comes from, read together so the record never pairs one
        with the other's source: "experiment profile NAME", "file metadata (...)", "config", ""."""
        active = self.experiments.active if self.experiments is not None else None
        if active is not None and active.calibration is not None:
            return active.calibration.um_per_pixel, f"experiment profile {active.calibration.name}"
        if self.from_file:
            return self.from_file, f"file metadata ({self.file_source or 'the image file'})"
        if self.default:
            return self.default, "config (um_per_pixel)"
        return None, ""


class FrameClock:
    """The time of a frame's points: when the acquisition software took the image, where the
    file says so (OME AcquisitionDate + DeltaT), else when the device captured it.

    Planes taken at one instant (the channels of a time point) would share a time and so
    overwrite each other's points in InfluxDB and the record: such a plane is moved to just past
    the previous frame's last `object` point (its objects sit at time + i µs)."""

    def __init__(self) -> None:
        self._last: tuple[int, int] | None = None  # previous acquired frame: its own time, the last µs its points took
        self._acquired_us = 0

    def time_us(self, frame: Frame) -> int:
        if frame.acquired_at is None:
            return int(round(frame.captured_at * 1e6))
        self._acquired_us = ts_us = int(round(frame.acquired_at * 1e6))
        if self._last is not None and self._last[0] <= ts_us <= self._last[1]:
            ts_us = self._last[1] + 1
        return ts_us

    def taken(self, frame: Frame, points: list[Point]) -> None:
        """Remember the span the frame's points use (only acquired frames can collide)."""
        if frame.acquired_at is not None and points:
            end = max([points[0].ts_us, *(p.ts_us for p in points if p.measurement == "object")])
            self._last = (min(self._acquired_us, points[0].ts_us), end)


def image_fields(frame: Frame) -> dict[str, FieldValue]:
    """What the file or camera said about the frame, as fields of its `frame` point (fields, not
    tags: a file name per point would make a series per file): file, plane_t/z/c, channel,
    stage_x_um..., and acquired_at (ISO 8601 UTC) where the file gives one."""
    fields: dict[str, FieldValue] = dict(frame.meta.fields)
    if frame.acquired_at is not None:
        fields["acquired_at"] = datetime.fromtimestamp(frame.acquired_at, timezone.utc).isoformat(timespec="microseconds")
    return fields


@dataclass
class PublishContext:
    """What publishing needs beyond the result: where points go and what every point carries."""

    store: Callable[[list[Point]], None]
    tags: Callable[[], dict[str, str]]
    calibration: Calibration
    run_id: str
    dropped: Callable[[], int] = lambda: 0  # frames the capture dropped so far (a running total)
    experiments: ExperimentRecorder | None = None
    track_log: TrackLog | None = None


def model_points(pipeline: Pipeline, analysis: Analysis, measure: FrameMeasure, base_tags: dict[str, str],
                 um_per_pixel: float | None, extra: FrameExtra | None = None, shape: tuple[int, int] | None = None) -> list[Point]:
    """One model's points of a frame: counts only when it was analysed. `slot` (the pipeline's
    name) is part of every series, so two slots running one bundle never overwrite each other.
    A bundle with count_models adds `count_estimate` beside `count` (the frame's and each class's)."""
    tags = {**base_tags, "slot": pipeline.name}
    if analysis.card is not None:
        tags.update(model=analysis.card.name, model_version=analysis.card.version)
    classes = analysis.card.classes if analysis.card else []
    points = frame_points(analysis.detections, measure, tags, classes, um_per_pixel, analysis.inference, extra)
    points[0].fields.update(analysis.fields)
    if analysis.card is not None and analysis.detections is not None and shape is not None:
        add_count_estimates(points, analysis.card, analysis.detections, shape)
    return points + list(analysis.extra.get("points", ()))  # type: ignore[call-overload]  # stages' own (e.g. `track`)


def add_count_estimates(points: list[Point], card: ModelCard, detections: Detections, shape: tuple[int, int]) -> None:
    """`count_estimate` on the frame point (the classes' sum) and on each class_stats point."""
    estimates = card.count_estimates(detections.class_ids, detections.xyxy, shape[0], shape[1])
    if estimates is None:
        return
    points[0].fields["count_estimate"] = sum(estimates.values())
    for point in points[1:]:
        if point.measurement == "class_stats" and point.tags.get("class") in estimates:
            point.fields["count_estimate"] = estimates[point.tags["class"]]


class Publisher:
    """result -> points -> outbox, experiment record, track log, live board."""

    def __init__(self, context: PublishContext, board: LiveBoard) -> None:
        self.context = context
        self.board = board
        self.processed = 0
        self._dropped_reported = 0
        self._clock = FrameClock()

    def publish(self, result: FrameResult) -> None:
        """Every captured frame writes its frame point per model: with counts when analysed,
        else with the word that says why not (docs/metrics.md)."""
        ctx, frame = self.context, result.frame
        self.board.fps.tick()
        total = ctx.dropped()
        dropped, self._dropped_reported = total - self._dropped_reported, total
        (um, calibrated_by), quality, tags = ctx.calibration.chosen(), result.quality, ctx.tags()
        fov = frame.image.shape[0] * frame.image.shape[1] * um**2 / 1e6 if um else None
        at, image = self._clock.time_us(frame) / 1e6, image_fields(frame)
        points: list[Point] = []
        main_fields: dict[str, FieldValue] = {}
        for pipeline, analysis in zip(result.pipelines, result.analyses, strict=True):
            extra = FrameExtra(analysis.status, quality.focus, quality.saturated, quality.dark, fov)
            measure = FrameMeasure(index=frame.index, captured_at=at, fps=self.board.fps.fps,
                                   inference_ms=analysis.inference_ms,
                                   latency_ms=(time.perf_counter() - frame.captured_mono) * 1000.0,
                                   dropped_frames=dropped, run_id=ctx.run_id)
            own = model_points(pipeline, analysis, measure, tags, um, extra, frame.image.shape[:2])
            own[0].fields.update(image)
            main_fields = main_fields or {**own[0].fields, "analysed": extra.analysed}
            points.extend(own)
        if result.main is not None and ctx.experiments is not None:
            points.extend(self._record(result, points[0].ts_us, um, calibrated_by))
        self._clock.taken(frame, points)
        ctx.store(points)
        if ctx.track_log is not None:
            ctx.track_log.add(points)
        self._post(result, main_fields)
        self.processed += 1

    def _record(self, result: FrameResult, ts_us: int, um: float | None, calibrated_by: str) -> list[Point]:
        """The main model's frame in the running experiment's record; its `object` points."""
        main, frame = result.main, result.frame
        assert main is not None and self.context.experiments is not None
        card = main.card
        estimates = (card.count_estimates(main.detections.class_ids, main.detections.xyxy, *frame.image.shape[:2])
                     if card is not None and main.detections is not None else None)
        context = FrameContext(card.classes if card else (), card.name if card else "", card.version if card else "",
                               um, frame.image.shape, frame.meta.fields, calibrated_by if um else "", estimates)
        return self.context.experiments.record(ts_us, frame.index, result.quality, main.status, main.detections, context)

    def _post(self, result: FrameResult, main_fields: dict[str, FieldValue]) -> None:
        main = result.main
        classes = tuple(main.card.classes) if main is not None and main.card is not None else ()
        detections = main.detections if main is not None else None
        self.board.overlays = {p.name for p in result.pipelines if p.options.overlay}
        frame = result.frame
        self.board.post(LatestFrame(frame.image, detections, frame.captured_at, frame.index, classes, main_fields, result.analyses))
