"""Live count QC: how well a model's counts agree with a person's, from spot-checked frames (pure).

A spot check is a frame the inbox kept at random (not because it looked odd, so it stands for the
stream), that a person then reviewed: the model's count of each class is paired with the person's
count of the same frame. Per model version and class the agreement is the Bland-Altman analysis
of the differences d = model - person: their mean (the bias), the 95 % limits of agreement
mean +- 1.96 SD (sample SD, n - 1; undefined for one frame), and the share of frames counted
exactly. No spot check means "not checked yet", never a perfect score (docs/inbox.md).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from device.metrics.points import FieldValue, Point

ALL = "all classes"  # the row of per-frame totals
NOT_CHECKED = "not checked yet"
MEASUREMENT = "count_qc"


@dataclass(frozen=True)
class SpotPair:
    """One model's and one person's count of one class on one spot-checked frame."""

    model: str  # name:version, the model's label
    cls: str
    model_count: int
    human_count: int
    frame: str = ""  # the spot check's id (a project image), to sum a frame's classes


@dataclass(frozen=True)
class Agreement:
    """Bland-Altman agreement of one model version with the reviewers on one class (or ALL)."""

    model: str
    cls: str
    frames: int
    mean_model: float
    mean_human: float
    mean_diff: float  # bias: model - person, objects per frame
    sd_diff: float | None  # None for a single frame
    loa_low: float | None  # mean_diff - 1.96 SD
    loa_high: float | None
    share_exact: float  # 0..1

    def public(self) -> dict[str, object]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def agreement_of(model: str, cls: str, pairs: Sequence[tuple[int, int]]) -> Agreement:
    """The agreement of (model count, person count) pairs; at least one pair."""
    if not pairs:
        raise ValueError("agreement needs at least one spot check")
    diffs = [m - h for m, h in pairs]
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1)) if n > 1 else None
    return Agreement(model, cls, n, sum(m for m, _ in pairs) / n, sum(h for _, h in pairs) / n, mean, sd,
                     mean - 1.96 * sd if sd is not None else None, mean + 1.96 * sd if sd is not None else None,
                     sum(d == 0 for d in diffs) / n)


def agreements(pairs: Iterable[SpotPair]) -> dict[str, list[Agreement]]:
    """Model label -> its agreement per class (sorted by name), then the ALL row of per-frame totals."""
    by_class: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    totals: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for p in pairs:
        by_class[(p.model, p.cls)].append((p.model_count, p.human_count))
        total = totals[p.model][p.frame]
        total[0] += p.model_count
        total[1] += p.human_count
    out: dict[str, list[Agreement]] = {}
    for model in sorted(totals):
        rows = [agreement_of(model, cls, by_class[(m, cls)]) for m, cls in sorted(by_class) if m == model]
        if len(rows) > 1:
            rows.append(agreement_of(model, ALL, [(t[0], t[1]) for t in totals[model].values()]))
        out[model] = rows
    return out


def status_of(model: str, table: dict[str, list[Agreement]]) -> str:
    """One line for a model: its exact-count share and bias over all classes, or NOT_CHECKED."""
    rows = table.get(model)
    if not rows:
        return NOT_CHECKED
    row = rows[-1]
    return (f"{row.frames} spot check{'s' if row.frames != 1 else ''}: counted exactly on {100 * row.share_exact:.0f} %, "
            f"bias {row.mean_diff:+.2f} per frame" + (f" ({row.cls})" if row.cls != ALL else ""))


def qc_points(name: str, version: str, rows: Sequence[Agreement], tags: dict[str, str], ts_us: int) -> list[Point]:
    """`count_qc` points (docs/metrics.md): one per class of one model version, its running agreement."""
    points = []
    for row in rows:
        fields: dict[str, FieldValue] = {"spot_checks": row.frames, "mean_diff": row.mean_diff, "share_exact": row.share_exact,
                                         "mean_model": row.mean_model, "mean_human": row.mean_human}
        if row.sd_diff is not None and row.loa_low is not None and row.loa_high is not None:
            fields.update(sd_diff=row.sd_diff, loa_low=row.loa_low, loa_high=row.loa_high)
        points.append(Point(MEASUREMENT, {**tags, "model": name, "model_version": version, "class": row.cls},
                            fields, ts_us))
    return points
