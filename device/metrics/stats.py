"""Per-frame statistics (pure numpy) and the points of the `frame` and `class_stats` measurements."""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from device.detections import Detections
from device.metrics.points import FieldValue, Point


class FpsMonitor:
    """Smoothed processing rate over the last `window` ticks (monotonic clock)."""

    def __init__(self, window: int = 30) -> None:
        self._times: deque[float] = deque(maxlen=window)

    def tick(self, now: float | None = None) -> None:
        self._times.append(time.monotonic() if now is None else now)

    @property
    def fps(self) -> float:
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


def quantile(ordered: list[float], q: float) -> float:
    """numpy's default (linear) quantile of an already sorted list; hand-written because
    np.percentile costs ~15 µs a call and the loop needs six per class per frame."""
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _summary(values: np.ndarray, prefix: str, out: dict[str, FieldValue]) -> None:
    ordered = sorted(values.tolist())
    out[f"{prefix}_mean"] = sum(ordered) / len(ordered)
    out[f"{prefix}_median"] = quantile(ordered, 0.5)
    out[f"{prefix}_p90"] = quantile(ordered, 0.9)


def class_fields(detections: Detections, class_id: int, um_per_pixel: float | None) -> dict[str, FieldValue]:
    """count, box width/height/area mean-median-p90 in px (and µm when calibrated), mean score."""
    mask = detections.class_ids == class_id
    count = int(mask.sum())
    out: dict[str, FieldValue] = {"count": count}
    if not count:
        return out
    width = detections.width[mask]
    height = detections.height[mask]
    _summary(width, "width_px", out)
    _summary(height, "height_px", out)
    _summary(width * height, "area_px", out)
    if um_per_pixel:
        for dim in ("width", "height"):
            for stat in ("mean", "median", "p90"):
                out[f"{dim}_um_{stat}"] = float(out[f"{dim}_px_{stat}"]) * um_per_pixel
        for stat in ("mean", "median", "p90"):
            out[f"area_um2_{stat}"] = float(out[f"area_px_{stat}"]) * um_per_pixel**2
    out["score_mean"] = float(detections.scores[mask].mean())
    return out


def new_run_id() -> str:
    """A per-start id, unique and sortable by start time: `20261201T061502Z-3fa9c1`."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


@dataclass(frozen=True)
class FrameMeasure:
    """What the loop knows about one processed frame besides its boxes."""

    index: int
    captured_at: float
    fps: float
    inference_ms: float
    latency_ms: float
    dropped_frames: int
    run_id: str = ""  # this start of the device (Runtime.run_id): frame_index repeats across starts


@dataclass(frozen=True)
class FrameExtra:
    """Quality and calibration of one frame (device/experiments): `analysed` is ok, out_of_focus,
    overexposed, underexposed, no_model or skipped (a tag); scores are NaN when the gates are off."""

    analysed: str
    focus: float = float("nan")
    saturated: float = float("nan")
    dark: float = float("nan")
    fov_mm2: float | None = None

    def fields(self) -> dict[str, FieldValue]:
        out: dict[str, FieldValue] = {}
        for name, value in (("focus", self.focus), ("saturated_frac", self.saturated), ("dark_frac", self.dark),
                            ("fov_mm2", self.fov_mm2)):
            if value is not None and value == value:
                out[name] = round(float(value), 6)
        return out


def frame_points(detections: Detections | None, measure: FrameMeasure, tags: dict[str, str],
                 classes: Sequence[str], um_per_pixel: float | None, inference: str = "local",
                 extra: FrameExtra | None = None) -> list[Point]:
    """One `frame` point plus one `class_stats` point per model class (zeros written too).

    `detections=None` is a frame the model did not analyse (`inference` says why): its point
    carries timing and `inference` but no `count` and no `class_stats`, so it can never be read
    as "zero objects"."""
    ts_us = int(round(measure.captured_at * 1e6))
    frame_tags = {**tags, "analysed": extra.analysed} if extra is not None else tags
    fields: dict[str, FieldValue] = {
        "fps": round(measure.fps, 3),
        "inference_ms": round(measure.inference_ms, 3),
        "latency_ms": round(measure.latency_ms, 3),
        "dropped_frames": measure.dropped_frames,
        "frame_index": measure.index,
        "inference": inference,
    }
    if measure.run_id:
        fields["run_id"] = measure.run_id
    fov = extra.fov_mm2 if extra is not None else None
    if extra is not None:
        fields.update(extra.fields())
    if detections is None:
        return [Point("frame", frame_tags, fields, ts_us)]
    fields["count"] = len(detections)
    if fov:
        fields["density_per_mm2"] = len(detections) / fov
    if len(detections):
        fields["score_mean"] = float(detections.scores.mean())
        fields["score_min"] = float(detections.scores.min())
    points = [Point("frame", frame_tags, fields, ts_us)]
    for class_id, name in enumerate(classes):
        stats = class_fields(detections, class_id, um_per_pixel)
        if fov:
            stats["density_per_mm2"] = int(stats["count"]) / fov
        points.append(Point("class_stats", {**tags, "class": name}, stats, ts_us))
    return points
