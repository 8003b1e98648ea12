"""Drift alarms on the synthetic microscope: a change mid-run raises the alarm within a stated
number of analysed frames and names what changed; it clears when the stream returns; a long
stationary stream raises none; frames the focus gate stopped never feed it.

Detections are the microscope's truth (what a perfect model would keep) with scores drawn from a
fixed Beta(9, 2) (median 0.84), so the test measures the monitor, not a model. The stream moves
to a new field every 50 frames (a scientist scanning a slide); the baseline is 60 frames of
another seed, as a training set's validation frames are other fields of the same kind of sample.
Default settings (window 300 analysed frames, confirm 10): an abrupt change is raised within
WITHIN frames of it (docs/drift.md has the measured delays).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from device.analysis import OUT_OF_FOCUS, ModelRun
from device.detections import Detections
from device.drift.baseline import VALIDATION, Baseline, build_baseline
from device.drift.monitor import CLASS_MIX, OBJECTS, SCORE, SIZE, DriftMonitor, nearest_to_raising
from device.drift.settings import DriftSettings
from device.drift.stage import CLEARED, LEARNT, RAISED, DriftStage
from device.models.bundle import ModelCard
from device.pipeline import ModelSlot, Pipeline, PipelineOptions
from device.sources.capture import Frame
from device.sources.synthetic import CLASSES, SyntheticMicroscope
from device.sources.synthetic_modes import create_scope, mode_config

WITHIN = 300  # analysed frames from the change to the alarm (one window); measured: 130-200
Stream = Callable[[], Detections]


def scored(truth: Detections, rng: np.random.Generator, a: float = 9.0, b: float = 2.0) -> Detections:
    return Detections(truth.xyxy, rng.beta(a, b, len(truth)).astype(np.float32), truth.class_ids)


def brightfield(seed: int, density: float = 120.0, every: int = 50, **options: object) -> Iterator[Detections]:
    scope = SyntheticMicroscope(width=640, height=480, density=density, seed=seed, **options)
    i = 0
    while True:
        i += 1
        if i % every == 0:
            scope.new_scene()
        yield scope.read().truth


def fields(mode: str, seed: int, count: int, every: int = 10, **options: object) -> Iterator[Detections]:
    """A static-sample mode: `count` fields drawn once, each shown for `every` frames, in turn."""
    scope = create_scope(mode_config(mode, {"seed": seed, **options}))
    drawn = [scope.new_scene() for _ in range(count)]
    truths = [Detections(s.boxes, np.ones(len(s.boxes), np.float32), s.class_ids) for s in drawn]
    i = 0
    while True:
        yield truths[(i // every) % len(truths)]
        i += 1


def baseline_of(source: Iterator[Detections], rng: np.random.Generator, classes: tuple[str, ...], frames: int = 60,
                step: int = 25) -> Baseline:
    kept = []
    for i in range(frames * step):
        truth = next(source)
        if i % step == step - 1:
            kept.append(scored(truth, rng))
    return build_baseline(kept, classes, VALIDATION)


@pytest.fixture(scope="module")
def bf_baseline() -> Baseline:
    return baseline_of(brightfield(99), np.random.default_rng(99), CLASSES)


def run(monitor: DriftMonitor, before: Stream, after: Stream, change_at: int, total: int) -> list[tuple[int, str]]:
    happened = []
    for i in range(total):
        event = monitor.observe(before() if i < change_at else after())
        if event:
            happened.append((i, event))
    return happened


def first_raise(happened: list[tuple[int, str]]) -> int:
    return next(i for i, event in happened if event == "raised")


def test_density_doubling_mid_run_is_raised_and_named(bf_baseline: Baseline) -> None:
    rng, a, b = np.random.default_rng(1), brightfield(1), brightfield(1, density=240.0)
    monitor = DriftMonitor(DriftSettings(), CLASSES, bf_baseline)
    happened = run(monitor, lambda: scored(next(a), rng), lambda: scored(next(b), rng), 400, 400 + WITHIN)
    assert [e for _, e in happened] == ["raised"]
    assert 400 < first_raise(happened) <= 400 + WITHIN
    assert OBJECTS in [c.quantity for c in monitor.state.changes]
    assert "% more objects per frame than in training" in monitor.state.message


def test_modality_change_mid_run_is_raised_and_named(bf_baseline: Baseline) -> None:
    """Brightfield -> phase contrast: other objects under the same model."""
    rng, a, b = np.random.default_rng(2), brightfield(2), fields("phase", 3, 30)
    monitor = DriftMonitor(DriftSettings(), CLASSES, bf_baseline)
    happened = run(monitor, lambda: scored(next(a), rng), lambda: scored(next(b), rng), 400, 400 + WITHIN)
    assert 400 < first_raise(happened) <= 400 + WITHIN
    assert {c.quantity for c in monitor.state.changes} & {SIZE, OBJECTS, CLASS_MIX}
    assert "than in training" in monitor.state.message


def test_magnification_x1_5_mid_run_says_how_much_larger() -> None:
    rng = np.random.default_rng(3)
    baseline = baseline_of(fields("phase", 90, 30), rng, ("cell", "rounded_cell"), frames=60, step=5)
    a, b = fields("phase", 4, 30), fields("phase", 5, 30, scale=1.5)
    monitor = DriftMonitor(DriftSettings(), ("cell", "rounded_cell"), baseline)
    happened = run(monitor, lambda: scored(next(a), rng), lambda: scored(next(b), rng), 400, 400 + WITHIN)
    assert 400 < first_raise(happened) <= 400 + WITHIN
    size = next(c for c in monitor.state.changes if c.quantity == SIZE)
    assert "% larger than in training" in size.sentence
    percent = int(size.sentence.split("objects are ")[1].split(" %")[0])
    assert 25 <= percent <= 60  # x1.5 seen through a window still partly of the old frames


def test_falling_scores_are_named_with_the_medians(bf_baseline: Baseline) -> None:
    """The model's confidence drops (scores drawn from Beta(5, 4), median ~0.56): said in words."""
    rng, a = np.random.default_rng(4), brightfield(4)
    monitor = DriftMonitor(DriftSettings(), CLASSES, bf_baseline)
    happened = run(monitor, lambda: scored(next(a), rng), lambda: scored(next(a), rng, 5.0, 4.0), 400, 400 + WITHIN)
    assert 400 < first_raise(happened) <= 400 + WITHIN
    assert SCORE in [c.quantity for c in monitor.state.changes]
    assert "scores fell from a median 0.8" in monitor.state.message


def test_the_alarm_clears_itself_when_the_stream_returns(bf_baseline: Baseline) -> None:
    rng, a, b = np.random.default_rng(5), brightfield(5), brightfield(5, density=240.0)
    monitor = DriftMonitor(DriftSettings(), CLASSES, bf_baseline)
    sequence = [a] * 400 + [b] * 400 + [a] * 700
    happened = [(i, e) for i, src in enumerate(sequence) if (e := monitor.observe(scored(next(src), rng)))]
    assert [e for _, e in happened] == ["raised", "cleared"]
    assert happened[1][0] <= 800 + WITHIN + 10
    assert monitor.state.state == "ok" and monitor.state.message == ""


def test_a_bundle_without_baseline_learns_one_first_and_says_so() -> None:
    rng, a, b = np.random.default_rng(6), brightfield(6), brightfield(6, density=240.0)
    monitor = DriftMonitor(DriftSettings(), CLASSES, None, "the bundle has no baseline")
    assert monitor.state.state == "learning" and "first 300 analysed frames" in monitor.state.baseline
    happened = run(monitor, lambda: scored(next(a), rng), lambda: scored(next(b), rng), 700, 700 + WITHIN)
    assert happened[0] == (299, "learnt")
    assert "learnt from the first 300 analysed frames of this run (the bundle has no baseline)" in monitor.state.baseline
    assert happened[1][1] == "raised" and "more objects per frame than at the start of the run" in monitor.state.message


@pytest.mark.slow
def test_a_long_stationary_stream_raises_nothing(bf_baseline: Baseline) -> None:
    """10,000 analysed frames (11 minutes at 15 fps) of the baseline's kind of sample, 200 fields:
    no alarm, and no statistic comes within half of raising one (bench/drift_cost.py runs the
    30-minute stream)."""
    rng, a = np.random.default_rng(7), brightfield(7)
    monitor = DriftMonitor(DriftSettings(), CLASSES, bf_baseline)
    nearest = 0.0
    started = time.perf_counter()
    for _ in range(10_000):
        assert monitor.observe(scored(next(a), rng)) == ""
        nearest = max(nearest, nearest_to_raising(monitor.state.stats, monitor.settings))
    assert monitor.state.state == "ok" and nearest < 0.8
    assert time.perf_counter() - started < 120


# ---- through the pipeline: what the model did not look at never feeds it -----------------------
class TruthDetector:
    """A detector that returns the next detections of a stream (the card carries no baseline)."""

    def __init__(self, stream: Stream) -> None:
        self.card = ModelCard.model_validate({
            "name": "truth", "version": "1", "classes": list(CLASSES), "created": "2026-12-01T00:00:00Z",
            "input": {"width": 640, "height": 480}})
        self.backend_name = "truth"
        self.backend = None
        self._stream = stream

    def analyse(self, image: np.ndarray, um_per_pixel: float | None = None) -> ModelRun:
        return ModelRun(self._stream())


def _pipeline(detector: TruthDetector, events: list[tuple[str, str]]) -> tuple[Pipeline, DriftStage]:
    stage = DriftStage(DriftSettings(learn_frames=200), lambda kind, message, tags: events.append((kind, message)))
    slot = ModelSlot(lambda path: detector)  # type: ignore[arg-type, return-value]
    slot.detector = detector  # type: ignore[assignment]
    return Pipeline(PipelineOptions(), slot, [stage]), stage


def _frame(i: int) -> Frame:
    return Frame(np.zeros((8, 8, 3), np.uint8), i, time.time(), time.perf_counter())


def test_out_of_focus_frames_never_feed_the_window() -> None:
    """Blurred stretches (where a model finds nothing) are gated: no alarm, not counted. The same
    stretches let through would raise 'fewer objects per frame'."""
    rng, a = np.random.default_rng(8), brightfield(8)
    for gated in (True, False):
        blurred = {"now": False}

        def detect(blurred: dict[str, bool] = blurred) -> Detections:
            return Detections.empty() if blurred["now"] else scored(next(a), rng)

        detector = TruthDetector(detect)
        events: list[tuple[str, str]] = []
        pipeline, stage = _pipeline(detector, events)
        for i in range(1600):
            blurred["now"] = i >= 400 and (i // 50) % 2 == 0  # half of every 100 frames out of focus
            analysis = pipeline.analyse(_frame(i), OUT_OF_FOCUS if gated and blurred["now"] else "")
            assert (analysis.detections is None) == (gated and blurred["now"])
        kinds = [k for k, _ in events]
        if gated:
            assert kinds == [LEARNT] and stage.state.frames == 400 + 600
        else:
            assert kinds[:2] == [LEARNT, RAISED] and "fewer objects per frame" in events[1][1]
            assert events[1][1].startswith("main (truth:1): ")
    assert CLEARED not in kinds
