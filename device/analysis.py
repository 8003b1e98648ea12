"""What a model made of a frame, and the one vocabulary that says how (or why not).

Every frame a model is asked about ends in exactly one word, written as the frame point's
`inference` field (docs/metrics.md):
- the model looked, and where it ran: `local`, `remote:<endpoint>` (a hive server), `fallback`
  (the hive failed this frame, the local model ran it). The point then has `count`, and its
  `analysed` tag is `ok`.
- the model did not look, and why: `skipped` (every k-th frame), `failed` (the model could not
  take the frame), `no_model` (none loaded), or a frame gate's reason (`out_of_focus`,
  `overexposed`, `underexposed`). The point has no `count`, and its `analysed` tag is that word.

`Analysis` makes "not analysed" unrepresentable as zero: a word of the second kind always comes
with `detections=None`, one of the first kind always with boxes, checked on construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

from device.detections import Detections
from device.metrics.points import FieldValue
from device.models.bundle import ModelCard
from device.sources.capture import Frame

# The model looked (REMOTE is a prefix: `remote:<endpoint>`).
LOCAL, FALLBACK, REMOTE = "local", "fallback", "remote:"
# The model did not look.
SKIPPED, FAILED, NO_MODEL = "skipped", "failed", "no_model"
OUT_OF_FOCUS, OVEREXPOSED, UNDEREXPOSED = "out_of_focus", "overexposed", "underexposed"
NOT_ANALYSED: tuple[str, ...] = (SKIPPED, FAILED, NO_MODEL, OUT_OF_FOCUS, OVEREXPOSED, UNDEREXPOSED)
OK = "ok"  # the `analysed` tag of a frame the model looked at


def is_route(word: str) -> bool:
    """True for the words that say where an analysed frame ran."""
    return word in (LOCAL, FALLBACK) or (word.startswith(REMOTE) and len(word) > len(REMOTE))


def combine_routes(routes: list[str]) -> str:
    """One route for a frame analysed in several passes (tiles): `fallback` if any pass fell
    back, else the one remote endpoint or `local`."""
    if not routes:
        return LOCAL
    if FALLBACK in routes:
        return FALLBACK
    return routes[0] if all(r == routes[0] for r in routes) else FALLBACK


@dataclass(frozen=True)
class ModelRun:
    """One detector call: the boxes, where they were computed and how long it took."""

    detections: Detections
    route: str = LOCAL
    inference_ms: float = 0.0
    fields: dict[str, FieldValue] = field(default_factory=dict)  # backend extras (bytes_sent, remote_ms, ...)


@dataclass(frozen=True)
class Analysis:
    """What one model made of one frame. `inference` is the vocabulary word above;
    `detections is None` exactly when the frame was not analysed."""

    pipeline: str
    inference: str
    detections: Detections | None
    card: ModelCard | None = None
    inference_ms: float = 0.0
    reason: str = ""  # why not analysed, in words (e.g. the exception of a failed frame)
    fields: dict[str, FieldValue] = field(default_factory=dict)  # extra fields of this frame's point
    extra: dict[str, object] = field(default_factory=dict)  # stage outputs (e.g. track ids), by stage name

    def __post_init__(self) -> None:
        if self.detections is None and self.inference not in NOT_ANALYSED:
            raise ValueError(f"pipeline {self.pipeline}: a frame without boxes must say why it was not analysed "
                             f"(one of {', '.join(NOT_ANALYSED)}), not '{self.inference}'")
        if self.detections is not None and not is_route(self.inference):
            raise ValueError(f"pipeline {self.pipeline}: an analysed frame needs a route (local, remote:<endpoint>, "
                             f"fallback), not '{self.inference}'")

    @classmethod
    def ran(cls, pipeline: str, run: ModelRun, card: ModelCard | None) -> Analysis:
        return cls(pipeline, run.route, run.detections, card, run.inference_ms, fields=dict(run.fields))

    @property
    def analysed(self) -> bool:
        return self.detections is not None

    @property
    def status(self) -> str:
        """The `analysed` tag: `ok`, or the word that says why not."""
        return OK if self.detections is not None else self.inference

    def with_detections(self, detections: Detections) -> Analysis:
        """The same analysis with changed boxes (for stages); refuses to invent boxes for a frame
        that was never analysed."""
        if self.detections is None:
            raise ValueError(f"pipeline {self.pipeline}: frame was not analysed ({self.inference}); a stage cannot give it boxes")
        return replace(self, detections=detections)


class Stage(Protocol):
    """A step after detection: tracker, filter, measure helper. Runs on every frame in order and
    must keep `detections is None` for a frame that was not analysed."""

    def __call__(self, frame: Frame, analysis: Analysis) -> Analysis: ...


class Verdict(Protocol):
    """A frame gate's answer: '' = analyse the frame, else the word that says why not."""

    @property
    def reason(self) -> str: ...


class FrameGate(Protocol):
    """Decides before any model runs whether a frame is worth analysing, and returns its verdict
    as a value (its scores travel with it to the frame's points)."""

    def __call__(self, frame: Frame) -> Verdict: ...
