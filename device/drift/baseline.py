"""The baseline: what a model produced on the frames it was validated on (or, for a bundle
without one, on the first analysed frames of a run), kept in model.json `metrics["baseline"]`.

It sits under `metrics` (a free-form section of the card) on purpose: a device that predates
baselines still loads a bundle that has one, and a bundle without one loads here unchanged.
The trainer writes the same structure with its own code (trainer/baseline.py, it never imports
`device`); tests/trainer/test_baseline.py checks this parser accepts what it writes.

Sizes are the equivalent side sqrt(width x height) of a box, in pixels (and µm where the
frames carried a pixel size). Histograms are stored as the cuts between their bins: deciles of
the baseline's own values, so each bin holds about a tenth of the baseline and the population
stability index (device/drift/statistic.py) weighs every part of the range alike.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from device.detections import Detections

log = logging.getLogger(__name__)

BASELINE_FORMAT = "scopehive-baseline"
BINS = 10  # deciles
VALIDATION, EVALUATE, LEARNT = "validation", "evaluate", "learnt"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Histogram(_Strict):
    """Values binned at `cuts` (bin i holds cuts[i-1] <= v < cuts[i]; the first and last are open)."""

    cuts: list[float] = Field(description="Increasing bin boundaries, one fewer than counts")
    counts: list[int] = Field(min_length=1, description="Baseline values per bin")
    median: float
    p10: float
    p90: float

    @field_validator("cuts")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if any(b <= a for a, b in zip(value, value[1:], strict=False)):
            raise ValueError("cuts must be strictly increasing")
        return value

    def model_post_init(self, context: Any) -> None:
        if len(self.counts) != len(self.cuts) + 1:
            raise ValueError(f"a histogram with {len(self.cuts)} cuts has {len(self.cuts) + 1} bins, not {len(self.counts)}")


class PerFrame(_Strict):
    mean: float = Field(ge=0)
    median: float = Field(ge=0)
    p10: float = Field(ge=0)
    p90: float = Field(ge=0)


class Baseline(_Strict):
    format: Literal["scopehive-baseline"] = "scopehive-baseline"
    version: int = Field(1, ge=1, le=1)
    source: Literal["validation", "evaluate", "learnt"] = Field(description="validation (training), evaluate "
                                                                "(trainer evaluate --record), learnt (the device, at run start)")
    note: str = Field("", description="Where the frames came from, in words")
    frames: int = Field(ge=1)
    objects: int = Field(ge=0)
    objects_per_frame: PerFrame
    objects_per_frame_by_class: dict[str, float] = Field(default_factory=dict, description="Mean per frame, by class name")
    class_mix: dict[str, float] = Field(default_factory=dict, description="Share of all objects, by class name")
    size_px: Histogram | None = None
    size_um: Histogram | None = None
    score: Histogram | None = None


def histogram(values: np.ndarray, bins: int = BINS) -> Histogram | None:
    """Decile histogram of `values` (None when there are none)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    cuts = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(cuts, values, side="right"), minlength=len(cuts) + 1)
    p10, median, p90 = np.quantile(values, [0.1, 0.5, 0.9])
    return Histogram(cuts=[float(c) for c in cuts], counts=[int(c) for c in counts], median=float(median),
                     p10=float(p10), p90=float(p90))


def sizes_px(detections: Detections) -> np.ndarray:
    """Equivalent side of every box, pixels."""
    return np.sqrt(np.clip(detections.width, 0, None) * np.clip(detections.height, 0, None))


def build_baseline(frames: Sequence[Detections], classes: Sequence[str], source: str, note: str = "",
                   um_per_pixel: Sequence[float | None] | None = None) -> Baseline:
    """The baseline of what a model kept on `frames` (its detections after thresholds)."""
    if not frames:
        raise ValueError("a baseline needs at least one frame")
    counts = np.array([len(d) for d in frames], np.float64)
    class_ids = np.concatenate([d.class_ids for d in frames]).astype(np.int64)
    by_class = np.bincount(np.clip(class_ids, 0, len(classes) - 1), minlength=len(classes)).astype(np.float64)
    sizes = np.concatenate([sizes_px(d) for d in frames])
    ums = list(um_per_pixel or [None] * len(frames))
    um_sizes = [sizes_px(d) * um for d, um in zip(frames, ums, strict=True) if um]
    p10, median, p90 = np.quantile(counts, [0.1, 0.5, 0.9])
    total = float(by_class.sum())
    return Baseline(
        source=source, note=note, frames=len(frames), objects=int(total),  # type: ignore[arg-type]
        objects_per_frame=PerFrame(mean=float(counts.mean()), median=float(median), p10=float(p10), p90=float(p90)),
        objects_per_frame_by_class={name: float(by_class[i] / len(frames)) for i, name in enumerate(classes)},
        class_mix={name: float(by_class[i] / total) if total else 0.0 for i, name in enumerate(classes)},
        size_px=histogram(sizes), size_um=histogram(np.concatenate(um_sizes)) if um_sizes else None,
        score=histogram(np.concatenate([d.scores for d in frames])),
    )


def card_baseline(metrics: dict[str, Any]) -> tuple[Baseline | None, str]:
    """The baseline a card's metrics carry, or None and why not (none; unreadable, with the reason)."""
    raw = metrics.get("baseline")
    if raw is None:
        return None, "the bundle has no baseline"
    try:
        return Baseline.model_validate(raw), ""
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        return None, f"the bundle's baseline is unreadable (field '{where}': {first['msg']})"
