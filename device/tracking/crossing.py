"""Counting line: tracks that cross a line drawn on the live view, per class and direction.

"forward" is the side the line's arrow points to on the overlay: the drawn direction (start ->
end) turned a quarter counter-clockwise on screen, so a line drawn top to bottom counts
left-to-right movement as forward. Each track counts at most once per direction, so an object
jittering on the line is not counted over and over; net flux is forward minus reverse.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

DIRECTIONS = ("forward", "reverse")


class LineError(ValueError):
    """A crossing line that cannot be used; the message says what to change."""


@dataclass(frozen=True)
class CrossingLine:
    """A segment in frame pixels, checked against the frame it is drawn on."""

    x1: float
    y1: float
    x2: float
    y2: float

    @classmethod
    def checked(cls, coords: object, width: int | None, height: int | None) -> CrossingLine:
        """A line from [x1, y1, x2, y2]; LineError for a wrong shape, zero length or a point
        outside the frame (when the frame size is known)."""
        if not isinstance(coords, list | tuple) or len(coords) != 4:
            raise LineError("a crossing line is four numbers: x1, y1, x2, y2 in frame pixels")
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in coords):  # strict: no "640", no true
            raise LineError("a crossing line is four numbers: x1, y1, x2, y2 in frame pixels")
        try:
            x1, y1, x2, y2 = (float(v) for v in coords)
        except OverflowError as exc:  # an integer of 400 digits has no float
            raise LineError("the crossing line's coordinates must be finite numbers within the frame") from exc
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            raise LineError("the crossing line's coordinates must be finite numbers")
        if math.hypot(x2 - x1, y2 - y1) < 2.0:
            raise LineError("the crossing line has (almost) zero length: draw it at least 2 pixels long")
        if width is not None and height is not None:
            for x, y in ((x1, y1), (x2, y2)):
                if not (0 <= x <= width and 0 <= y <= height):
                    raise LineError(f"the crossing line's end ({x:g}, {y:g}) lies outside the {width}x{height} frame")
        return cls(x1, y1, x2, y2)

    @property
    def length(self) -> float:
        return math.hypot(self.x2 - self.x1, self.y2 - self.y1)

    @functools.cached_property
    def normal(self) -> np.ndarray:
        """Unit vector pointing to the forward side (on screen, y down)."""
        dx, dy = self.x2 - self.x1, self.y2 - self.y1
        return np.array([dy, -dx]) / self.length

    def as_list(self) -> list[float]:
        return [self.x1, self.y1, self.x2, self.y2]

    def crossings(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """Per move (n, 2) -> (n, 2): +1 forward, -1 reverse, 0 no crossing of the segment."""
        a = np.array([self.x1, self.y1])
        b = np.array([self.x2, self.y2])
        side_before = (before - a) @ self.normal
        side_after = (after - a) @ self.normal
        straddles = (side_before < 0) != (side_after < 0)
        # the move's own line must separate the segment's two ends, or it passed beside the segment
        move = after - before
        cross_a = move[:, 0] * (a[1] - before[:, 1]) - move[:, 1] * (a[0] - before[:, 0])
        cross_b = move[:, 0] * (b[1] - before[:, 1]) - move[:, 1] * (b[0] - before[:, 0])
        within = (cross_a * cross_b) <= 0
        return np.where(straddles & within, np.where(side_after >= 0, 1, -1), 0).astype(np.int8)


class CrossingCounter:
    """Crossings of one line since it was set (or reset), per class index and direction."""

    def __init__(self, line: CrossingLine, n_classes: int, started: float) -> None:
        self.line = line
        self.started = started
        self.counts = np.zeros((max(n_classes, 1), 2), np.int64)
        self.interval = np.zeros_like(self.counts)  # since the last crossing point
        self._counted: dict[int, int] = {}  # track id -> bit 1 forward, bit 2 reverse already counted

    def add(self, before: np.ndarray, after: np.ndarray, track_ids: np.ndarray, classes: np.ndarray) -> None:
        signs = self.line.crossings(before, after)
        for tid, cls, sign in zip(track_ids[signs != 0].tolist(), classes[signs != 0].tolist(),
                                  signs[signs != 0].tolist(), strict=True):
            bit = 1 if sign > 0 else 2
            done = self._counted.get(tid, 0)
            if done & bit or cls >= len(self.counts):
                continue
            self._counted[tid] = done | bit
            column = 0 if sign > 0 else 1
            self.counts[cls, column] += 1
            self.interval[cls, column] += 1

    def forget(self, track_ids: list[int]) -> None:
        """Tracks that ended can never cross again: drop their bookkeeping."""
        for tid in track_ids:
            self._counted.pop(tid, None)

    def take_interval(self) -> np.ndarray:
        out = self.interval.copy()
        self.interval[:] = 0
        return out
