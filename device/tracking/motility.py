"""Motility of finished tracks: speed, straightness and distance per track, distributions per class.

Speeds follow the computer-assisted sperm analysis conventions: the average path speed (VAP,
along the smoothed path) is *the* speed, the straight-line speed (VSL) and straightness
(VSL / VAP) say how directed the movement was. Positions are on the sample (stage drift
subtracted), so a still cell on a drifting stage has speed ~0, not the drift.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from device.metrics.stats import quantile

KEEP_PER_CLASS = 5000  # recent finished tracks per class behind the distributions


@dataclass(frozen=True)
class TrackRecord:
    """One finished track, in pixels and seconds (µm fields come from the calibration)."""

    track_id: int
    class_id: int
    frames: int
    start: float
    end: float
    path_px: float
    net_px: float
    path_end: float  # time of the last smoothed position (the mean time of the last samples)
    path_start: float  # time the path started: the first position wholly inside the frame
    start_xy: tuple[float, float]
    end_xy: tuple[float, float]

    @property
    def duration_s(self) -> float:
        return max(self.end - self.start, 0.0)

    @property
    def speed_px_s(self) -> float:
        """Average path speed (VAP): smoothed path over the time it took."""
        return self.path_px / self.path_span_s if self.measured else 0.0

    @property
    def straight_speed_px_s(self) -> float:
        """Straight-line speed (VSL): first to last smoothed position."""
        return self.net_px / self.path_span_s if self.measured else 0.0

    @property
    def path_span_s(self) -> float:
        return max(self.path_end - self.path_start, 0.0)

    @property
    def measured(self) -> bool:
        """Whether the track was wholly in view long enough to have a speed at all."""
        return self.path_span_s > 0

    @property
    def straightness(self) -> float:
        return min(1.0, self.net_px / self.path_px) if self.path_px > 0 else 0.0


def records(rows: np.ndarray) -> list[TrackRecord]:
    """TrackRecords from the tracker's structured rows of finished tracks."""
    out = []
    for row in rows:
        net = float(np.hypot(*(row["smooth"] - row["first"])))
        out.append(TrackRecord(int(row["tid"]), int(row["cls"]), int(row["hits"]), float(row["t0"]), float(row["t1"]),
                               float(row["path"]), net, float(row["smooth_t"]), float(row["first_t"]),
                               (float(row["start"][0]), float(row["start"][1])),
                               (float(row["pos"][0]), float(row["pos"][1]))))
    return out


class MotilityStats:
    """Speeds of recent finished tracks per class; summaries on demand (heartbeat, live view)."""

    def __init__(self, n_classes: int, motile_speed: float) -> None:
        """`motile_speed` is in µm/s when a calibration is given to `summary`, else in px/s."""
        self.motile_speed = motile_speed
        self._speeds: list[deque[float]] = [deque(maxlen=KEEP_PER_CLASS) for _ in range(max(n_classes, 1))]
        self.finished = np.zeros(max(n_classes, 1), np.int64)

    def add(self, record: TrackRecord) -> None:
        if record.class_id < len(self._speeds) and record.measured:
            self._speeds[record.class_id].append(record.speed_px_s)
            self.finished[record.class_id] += 1

    def summary(self, class_id: int, um_per_pixel: float | None) -> dict[str, float | int]:
        """Finished tracks, share motile and speed median, quartiles and IQR (px/s, and µm/s
        when calibrated) of this class's recent tracks."""
        speeds = sorted(self._speeds[class_id]) if class_id < len(self._speeds) else []
        out: dict[str, float | int] = {"tracks": len(speeds)}
        if not speeds:
            return out
        threshold_px_s = self.motile_speed / um_per_pixel if um_per_pixel else self.motile_speed
        out["motile_share"] = sum(1 for s in speeds if s > threshold_px_s) / len(speeds)
        q1, median, q3 = (quantile(speeds, q) for q in (0.25, 0.5, 0.75))
        units = [("px_s", 1.0)] + ([("um_s", um_per_pixel)] if um_per_pixel else [])
        for unit, k in units:
            out.update({f"speed_median_{unit}": median * k, f"speed_q1_{unit}": q1 * k,
                        f"speed_q3_{unit}": q3 * k, f"speed_iqr_{unit}": (q3 - q1) * k})
        return out
