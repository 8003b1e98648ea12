"""The drift monitor of one model: a sliding window of analysed frames against the baseline.

It is fed only frames the model looked at (the stage, device/drift/stage.py, never passes it a
frame without boxes), keeps running sums so a frame costs a few bincounts (bench/drift_cost.py),
and judges four quantities on every frame once the window is full:

- objects per frame: relative change of the window's mean against the baseline's mean;
- object size (equivalent side, px): PSI over the baseline's decile bins AND the change of the median;
- score: PSI AND the change of the median score;
- class mix: PSI over the classes AND the largest change of one class's share.

A histogram quantity needs both (a PSI alone flags shifts no one would call a change; a median
alone misses a changed shape), and `min_objects` in the window. The alarm is raised when some
quantity holds for `confirm_frames` consecutive analysed frames, and cleared when every quantity
stays under `clear_ratio` of its thresholds as long. See docs/drift.md.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from device.detections import Detections
from device.drift.baseline import LEARNT, Baseline, Histogram, build_baseline, sizes_px
from device.drift.settings import DriftSettings
from device.drift.statistic import binned_median, psi

SCORE_EDGES = np.linspace(0.0, 1.0, 201)  # fine bins, for medians
SIZE_EDGES = 2.0 ** np.linspace(0.0, 13.0, 13 * 32 + 1)  # 1 px to 8192 px, 1/32 octave
OFF, LEARNING, OK, DRIFT = "off", "learning", "ok", "drift"
SIZE, SCORE, OBJECTS, CLASS_MIX = "size", "score", "objects", "class_mix"
_COMPARED_WITH = {"validation": "in training", "evaluate": "in its evaluation", LEARNT: "at the start of the run"}


@dataclass(frozen=True)
class Change:
    """One quantity that parted from the baseline: its statistics and the sentence for people."""

    quantity: str
    ratio: float  # how far past its thresholds (>= 1: holds), the smaller of its two criteria
    sentence: str


@dataclass(frozen=True)
class DriftState:
    state: str  # off | learning | ok | drift
    baseline: str = ""  # where the baseline comes from, in words
    frames: int = 0  # analysed frames seen since the model (or its baseline) began
    changes: tuple[Change, ...] = ()
    stats: dict[str, float] = field(default_factory=dict)
    since: float | None = None  # when the alarm was raised (epoch s)

    @property
    def message(self) -> str:
        return "; ".join(c.sentence for c in self.changes)

    @property
    def alarm(self) -> bool:
        return self.state == DRIFT

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "alarm": self.alarm, "message": self.message, "baseline": self.baseline,
                "frames": self.frames, "since": self.since, "changed": [c.quantity for c in self.changes],
                "stats": {k: round(v, 4) for k, v in self.stats.items()}}


class _Window:
    """Running sums over the last `size` analysed frames, all quantities in one flat count vector
    (one bincount, one add and one subtract a frame): [objects | classes | size deciles | score
    deciles | fine sizes | fine scores]; `part(i)` is a view of quantity i."""

    def __init__(self, size: int, n_classes: int, size_cuts: np.ndarray, score_cuts: np.ndarray) -> None:
        self.size, self.n_classes = size, n_classes
        self.cuts = (size_cuts, score_cuts, SIZE_EDGES[1:-1], SCORE_EDGES[1:-1])
        lengths = (1, n_classes, *(len(c) + 1 for c in self.cuts))
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.frames: deque[np.ndarray] = deque()
        self.sums = np.zeros(int(self.offsets[-1]), np.int64)

    def part(self, i: int) -> np.ndarray:
        return self.sums[self.offsets[i] : self.offsets[i + 1]]

    def add(self, detections: Detections) -> None:
        sizes, scores, o = sizes_px(detections), detections.scores, self.offsets
        index = np.concatenate([np.minimum(detections.class_ids, self.n_classes - 1) + o[1],
                                np.searchsorted(self.cuts[0], sizes, side="right") + o[2],
                                np.searchsorted(self.cuts[1], scores, side="right") + o[3],
                                np.searchsorted(self.cuts[2], sizes, side="right") + o[4],
                                np.searchsorted(self.cuts[3], scores, side="right") + o[5]])
        counts = np.bincount(index, minlength=len(self.sums))
        counts[0] = len(detections)
        self.frames.append(counts)
        self.sums += counts
        if len(self.frames) > self.size:
            self.sums -= self.frames.popleft()

    @property
    def full(self) -> bool:
        return len(self.frames) >= self.size


def _cuts(histogram: Histogram | None) -> np.ndarray:
    return np.asarray(histogram.cuts if histogram else [], np.float64)


class DriftMonitor:
    """Judges one model's analysed frames against its baseline (learning one first if it has none)."""

    def __init__(self, settings: DriftSettings, classes: Sequence[str], baseline: Baseline | None, why_none: str = "") -> None:
        self.settings = settings
        self.classes = tuple(classes)
        self.why_none = why_none
        self._learning: list[Detections] = []
        self._um: list[float | None] = []
        self.baseline: Baseline | None = None
        self._window: _Window | None = None
        self._um_now: float | None = None
        self._streak = 0
        self._words = ""
        self.state = DriftState(LEARNING, f"learning: {why_none or 'no baseline'}; from the first "
                                          f"{settings.learn_frames} analysed frames")
        if baseline is not None:
            self._use(baseline)

    def _use(self, baseline: Baseline) -> None:
        self.baseline = baseline
        self._window = _Window(self.settings.window_frames, len(self.classes), _cuts(baseline.size_px), _cuts(baseline.score))
        words = {"validation": f"validation frames of training ({baseline.frames})",
                 "evaluate": f"the recorded evaluation ({baseline.frames} frames)"}
        self._words = _COMPARED_WITH.get(baseline.source, "in the baseline")
        self._streak = 0
        self.state = DriftState(OK, words.get(baseline.source, baseline.note or f"{baseline.frames} frames"), self.state.frames)

    def observe(self, detections: Detections, um_per_pixel: float | None = None) -> str:
        """Feed one analysed frame; returns what happened: '', 'learnt', 'raised' or 'cleared'."""
        frames = self.state.frames + 1
        if self._window is None:
            self._learning.append(detections)
            self._um.append(um_per_pixel)
            self.state = DriftState(LEARNING, self.state.baseline, frames)
            if len(self._learning) < self.settings.learn_frames:
                return ""
            note = f"learnt from the first {len(self._learning)} analysed frames of this run ({self.why_none or 'no baseline'})"
            self._use(build_baseline(self._learning, self.classes, LEARNT, note, self._um))
            self._learning, self._um = [], []
            self.state = DriftState(OK, note, frames)
            return "learnt"
        self._window.add(detections)
        self._um_now = um_per_pixel
        if not self._window.full:
            self.state = DriftState(self.state.state, self.state.baseline, frames, self.state.changes, {}, self.state.since)
            return ""
        return self._judge(frames)

    # ---- judging ----------------------------------------------------------------------------
    def _judge(self, frames: int) -> str:
        changes, stats = self._changes()
        alarmed = self.state.state == DRIFT
        s = self.settings
        if not alarmed:
            holding = tuple(c for c in changes if c.ratio >= 1.0)
            self._streak = self._streak + 1 if holding else 0
            if self._streak >= s.confirm_frames:
                self._streak = 0
                self.state = DriftState(DRIFT, self.state.baseline, frames, holding, stats, time.time())
                return "raised"
            self.state = DriftState(OK, self.state.baseline, frames, (), stats)
            return ""
        lingering = tuple(c for c in changes if c.ratio >= s.clear_ratio)
        self._streak = 0 if lingering else self._streak + 1
        if self._streak >= s.confirm_frames:
            self._streak = 0
            self.state = DriftState(OK, self.state.baseline, frames, (), stats)
            return "cleared"
        kept = lingering or self.state.changes
        self.state = DriftState(DRIFT, self.state.baseline, frames, kept, stats, self.state.since)
        return ""

    def _changes(self) -> tuple[list[Change], dict[str, float]]:
        assert self._window is not None and self.baseline is not None
        w, b, s = self._window, self.baseline, self.settings
        n_frames, n_objects = len(w.frames), int(w.sums[0])
        live_mean, base_mean = n_objects / n_frames, b.objects_per_frame.mean
        change = live_mean / base_mean - 1.0 if base_mean > 0 else (live_mean if live_mean >= 1 else 0.0)
        stats = {"count_change": change}
        changes: list[Change] = []
        if abs(change) >= s.count_change * s.clear_ratio:
            more = "more" if change > 0 else "fewer"
            changes.append(Change(OBJECTS, abs(change) / s.count_change,
                                  f"{abs(change) * 100:.0f} % {more} objects per frame than {self._words} "
                                  f"({live_mean:.1f}, was {base_mean:.1f})"))
        if n_objects < s.min_objects:
            return changes, stats
        for check in (self._size, self._score, self._mix):
            found = check(stats)
            if found is not None:
                changes.append(found)
        return changes, stats

    def _size(self, stats: dict[str, float]) -> Change | None:
        w, b, s = self._window, self.baseline, self.settings
        assert w is not None and b is not None
        if b.size_px is None:
            return None
        value = stats["size_psi"] = psi(np.asarray(b.size_px.counts), w.part(2))
        median = binned_median(w.part(4), SIZE_EDGES) or 0.0
        rel = stats["size_change"] = median / b.size_px.median - 1.0 if b.size_px.median > 0 else 0.0
        ratio = min(value / s.psi, abs(rel) / s.size_change)
        if ratio < s.clear_ratio:
            return None
        words = f"objects are {abs(rel) * 100:.0f} % {'larger' if rel > 0 else 'smaller'} than {self._words} " \
                f"(median {median:.1f} px, was {b.size_px.median:.1f} px"
        um = self._um_now
        if um and b.size_um is not None:
            words += f"; {median * um:.1f} µm, was {b.size_um.median:.1f} µm"
        return Change(SIZE, ratio, words + ")")

    def _score(self, stats: dict[str, float]) -> Change | None:
        w, b, s = self._window, self.baseline, self.settings
        assert w is not None and b is not None
        if b.score is None:
            return None
        value = stats["score_psi"] = psi(np.asarray(b.score.counts), w.part(3))
        median = binned_median(w.part(5), SCORE_EDGES) or 0.0
        diff = stats["score_change"] = median - b.score.median
        ratio = min(value / s.psi, abs(diff) / s.score_change)
        if ratio < s.clear_ratio:
            return None
        return Change(SCORE, ratio, f"scores {'fell' if diff < 0 else 'rose'} from a median {b.score.median:.2f} to {median:.2f}")

    def _mix(self, stats: dict[str, float]) -> Change | None:
        w, b, s = self._window, self.baseline, self.settings
        assert w is not None and b is not None
        if len(self.classes) < 2 or not b.objects:
            return None
        base = np.array([b.class_mix.get(name, 0.0) for name in self.classes]) * b.objects
        live = w.part(1)
        value = stats["mix_psi"] = psi(base, live)
        live_share = live / max(1, int(live.sum()))
        diff = live_share - base / max(1e-12, float(base.sum()))
        i = int(np.argmax(np.abs(diff)))
        ratio = min(value / s.psi, abs(float(diff[i])) / s.mix_change)
        if ratio < s.clear_ratio:
            return None
        was = live_share[i] - diff[i]
        return Change(CLASS_MIX, ratio, f"the class mix changed: {self.classes[i]} is {live_share[i] * 100:.0f} % "
                                        f"of objects, was {was * 100:.0f} % {self._words}")


def nearest_to_raising(stats: dict[str, float], settings: DriftSettings) -> float:
    """How close the window's statistics are to raising the alarm: the largest over the quantities
    of the smaller of its two criteria over their thresholds (1 = raises). For benchmarks and tests."""
    s = settings
    ratios = [abs(stats.get("count_change", 0.0)) / s.count_change]
    pairs = (("size_psi", "size_change", s.size_change), ("score_psi", "score_change", s.score_change))
    ratios += [min(stats[p] / s.psi, abs(stats[e]) / t) for p, e, t in pairs if p in stats and e in stats]
    return max(ratios)
