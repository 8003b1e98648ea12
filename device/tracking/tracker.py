"""The field tracker: stable ids for the objects of one model, frame after frame.

Built for a microscope rather than a street scene: the whole field drifts with the stage, objects
are small, touch each other and barely change appearance, and the budget is a fraction of a
millisecond per frame at 100 objects. So the state of every open track is one row of a numpy
structured array (one fancy index compacts or extends all of it), each track predicts with its
own velocity (new tracks with the field's drift), detections are matched per class inside a
gate, closest pairs first, and the drift is re-estimated from the matches of every frame.
bench/tracking_compare.py measures it against ByteTrack (supervision) and norfair; see
docs/tracking.md for why it is home-made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from device.detections import Detections
from device.tracking.drift import estimate_drift
from device.tracking.settings import TrackingSettings

_CLASS_SPACING = 1e6  # px between classes in the matching space; far beyond any frame and gate


def track_dtype(window: int) -> np.dtype:
    """One row per open track; `ring` holds the last `window` field positions for smoothing and
    `ring_t` their times: a smoothed position belongs to the mean time of its samples, so the
    smoothed path's speed has no lag bias however short the track. Only positions of objects wholly
    inside the frame (`inner` of them) make the path: a box cut by the frame's edge shrinks and its
    centre moves at half the object's speed."""
    return np.dtype([
        ("tid", np.int64), ("cls", np.int32), ("hits", np.int32), ("missed", np.int32),
        ("pos", np.float64, 2), ("vel", np.float64, 2), ("radius", np.float64),
        ("t0", np.float64), ("t1", np.float64), ("start", np.float64, 2), ("first", np.float64, 2),
        ("sample", np.float64, 2), ("smooth", np.float64, 2), ("ring", np.float64, (window, 2)),
        ("ring_t", np.float64, window), ("smooth_t", np.float64), ("path", np.float64), ("raw_path", np.float64),
        ("inner", np.int32), ("first_t", np.float64),
    ])


@dataclass(frozen=True)
class TrackStep:
    """What one frame did: the track id of every detection, crossings of the frame's moves
    (previous -> current image position per matched track) and the tracks that ended."""

    ids: np.ndarray  # (n,) int64, aligned with the frame's detections
    moved_from: np.ndarray  # (m, 2) previous image positions of matched tracks
    moved_to: np.ndarray  # (m, 2) their current positions
    moved_rows: np.ndarray  # (m,) structured rows of those tracks (after the update)
    ended: np.ndarray  # structured rows of the confirmed tracks that ended this frame
    confirmed: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))  # classes newly confirmed
    reappeared: int = 0  # tracks matched again after missed frames: the detections flicker


class FieldTracker:
    """Per-class tracks with field-drift compensation. `update()` once per frame, `close()` at a
    model switch or shutdown (every open track ends, so no track spans two models)."""

    def __init__(self, settings: TrackingSettings) -> None:
        self.settings = settings
        self._dtype = track_dtype(settings.smooth_frames)
        self.rows = np.zeros((0,), self._dtype)
        self.drift = np.zeros(2)  # px/frame, last estimate
        self.offset = np.zeros(2)  # accumulated stage displacement since the start, px
        self._next_id = 1

    def update(self, detections: Detections, t: float, shape: tuple[int, int] | None = None) -> TrackStep:
        """Match this frame's detections to the open tracks; start, extend and end tracks.
        `shape` (height, width) tells which boxes touch the frame's edge (kept out of the path)."""
        centres = (detections.xyxy[:, :2] + detections.xyxy[:, 2:]).astype(np.float64) / 2
        inside = _inside(detections, shape)
        radii = np.hypot(detections.width, detections.height).astype(np.float64) / 2
        rows = self.rows
        steps = (rows["missed"] + 1).astype(np.float64)
        predicted = rows["pos"] + rows["vel"] * steps[:, None]
        ti, di = self._associate(predicted, centres, detections.class_ids)
        displacement = (centres[di] - rows["pos"][ti]) / steps[ti, None]
        self.drift = estimate_drift(displacement[rows["missed"][ti] == 0], self.drift)
        self.offset = self.offset + self.drift
        moved_from = rows["pos"][ti].copy()
        was_confirmed = rows["hits"][ti] >= self.settings.min_frames
        reappeared = int(np.count_nonzero(rows["missed"][ti] > 0))
        self._extend(ti, centres[di], radii[di], displacement, t)
        self._add_samples(ti[inside[di]], centres[di][inside[di]], t)
        now_confirmed = rows["hits"][ti] >= self.settings.min_frames
        confirmed = rows["cls"][ti][now_confirmed & ~was_confirmed]
        unmatched = np.ones(len(rows), bool)
        unmatched[ti] = False
        rows["missed"][unmatched] += 1
        ended = rows["missed"] > self.settings.max_missed
        finished = rows[ended & (rows["hits"] >= self.settings.min_frames)]
        moved_rows = rows[ti]
        ids = np.zeros(len(detections), np.int64)
        ids[di] = rows["tid"][ti]
        self.rows = rows[~ended]
        new = np.ones(len(detections), bool)
        new[di] = False
        ids[new] = self._start(centres[new], radii[new], detections.class_ids[new], t, inside[new])
        if self.settings.min_frames <= 1:
            confirmed = np.concatenate([confirmed, detections.class_ids[new]])
        return TrackStep(ids, moved_from, centres[di], moved_rows, finished, confirmed.astype(np.int32), reappeared)

    def close(self) -> np.ndarray:
        """End every open track now; returns the confirmed ones (their `track` points are due)."""
        finished = self.rows[self.rows["hits"] >= self.settings.min_frames]
        self.rows = np.zeros((0,), self._dtype)
        return finished

    def _associate(self, predicted: np.ndarray, centres: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (track index, detection index): same class, inside the gate, closest first.

        Mutual nearest neighbours are taken at once (vectorised; greedy would take them too),
        only the contested rest goes through the closest-first loop."""
        if not len(predicted) or not len(centres):
            return np.zeros((0,), np.intp), np.zeros((0,), np.intp)
        # classes a world apart on x: a cross-class pair is always outside the gate (no mask needed)
        dx = (predicted[:, 0] + _CLASS_SPACING * self.rows["cls"])[:, None] - (centres[:, 0] + _CLASS_SPACING * classes)[None, :]
        dy = predicted[:, 1, None] - centres[None, :, 1]
        dist = dx * dx
        dist += dy * dy  # squared distances: no square root needed to compare or order them
        gate = self.settings.gate_px + 0.25 * self.rows["radius"]
        dist[dist > (gate * gate)[:, None]] = np.inf
        best_d = dist.argmin(axis=1)
        best_t = dist.argmin(axis=0)
        rows = np.arange(len(predicted))
        mutual = (best_t[best_d] == rows) & (dist[rows, best_d] < np.inf)
        pairs_t, pairs_d = rows[mutual].tolist(), best_d[mutual].tolist()
        dist[pairs_t, :] = np.inf
        dist[:, pairs_d] = np.inf
        cand_t, cand_d = np.nonzero(dist < np.inf)
        if len(cand_t):
            used_t, used_d = set(pairs_t), set(pairs_d)
            for k in np.argsort(dist[cand_t, cand_d], kind="stable").tolist():
                t_i, d_i = int(cand_t[k]), int(cand_d[k])
                if t_i not in used_t and d_i not in used_d:
                    used_t.add(t_i)
                    used_d.add(d_i)
                    pairs_t.append(t_i)
                    pairs_d.append(d_i)
        return np.asarray(pairs_t, np.intp), np.asarray(pairs_d, np.intp)

    def _extend(self, ti: np.ndarray, centres: np.ndarray, radii: np.ndarray, displacement: np.ndarray, t: float) -> None:
        """Matched tracks take their detection: velocity, position, size, time."""
        rows = self.rows
        if not len(ti):
            return
        rows["vel"][ti] = 0.5 * rows["vel"][ti] + 0.5 * displacement
        rows["pos"][ti] = centres
        rows["radius"][ti] = radii
        rows["t1"][ti] = t
        rows["missed"][ti] = 0
        rows["hits"][ti] += 1

    def _add_samples(self, ti: np.ndarray, centres: np.ndarray, t: float) -> None:
        """Positions on the sample (drift removed) of objects wholly in view: path lengths and the
        smoothed path; a track's first such position starts its path."""
        rows = self.rows
        if not len(ti):
            return
        sample = centres - self._field_shift()
        fresh = rows["inner"][ti] == 0
        for name in ("first", "sample", "smooth"):
            rows[name][ti[fresh]] = sample[fresh]
        rows["first_t"][ti[fresh]] = t
        rows["raw_path"][ti] += np.hypot(*(sample - rows["sample"][ti]).T)
        rows["sample"][ti] = sample
        window = self.settings.smooth_frames
        ring, ring_t = rows["ring"][ti], rows["ring_t"][ti]
        slot = (np.arange(len(ti)), rows["inner"][ti] % window)
        ring[slot], ring_t[slot] = sample, t
        rows["inner"][ti] += 1
        filled = np.minimum(rows["inner"][ti], window)
        mask = np.arange(window)[None, :] < filled[:, None]
        smooth = (ring * mask[:, :, None]).sum(axis=1) / filled[:, None]
        rows["ring"][ti], rows["ring_t"][ti] = ring, ring_t
        rows["smooth_t"][ti] = (ring_t * mask).sum(axis=1) / filled
        rows["path"][ti] += np.hypot(*(smooth - rows["smooth"][ti]).T)
        rows["smooth"][ti] = smooth

    def _field_shift(self) -> np.ndarray:
        """What to subtract from image positions to get positions on the sample."""
        return self.offset if self.settings.subtract_drift else np.zeros(2)

    def _start(self, centres: np.ndarray, radii: np.ndarray, classes: np.ndarray, t: float, inside: np.ndarray) -> np.ndarray:
        """New tracks for unmatched detections; they first predict with the field's drift."""
        n = len(centres)
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        if not n:
            return ids
        new = np.zeros((n,), self._dtype)
        new["tid"], new["cls"], new["hits"], new["pos"], new["vel"] = ids, classes, 1, centres, self.drift
        new["radius"], new["t0"], new["t1"], new["start"] = radii, t, t, centres
        first = len(self.rows)
        self.rows = np.concatenate([self.rows, new])
        self._add_samples(np.arange(first, first + n)[inside], centres[inside], t)
        return ids


def _inside(detections: Detections, shape: tuple[int, int] | None) -> np.ndarray:
    """Boxes clear of the frame's edge (all of them when the frame size is not given)."""
    if shape is None:
        return np.ones(len(detections), bool)
    height, width = shape
    x1, y1, x2, y2 = detections.xyxy.T
    return np.asarray((x1 > 1) & (y1 > 1) & (x2 < width - 1) & (y2 < height - 1))
