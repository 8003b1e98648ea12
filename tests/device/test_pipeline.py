"""Per-model pipelines: skipped, gated and model-less frames never write a count; stages and
several models on one feed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from device.analysis import NO_MODEL, SKIPPED, Analysis
from device.config import DeviceConfig
from device.detections import Detections
from device.inference.detector import load_detector
from device.metrics.stats import FrameMeasure
from device.pipeline import ModelSlot, Pipeline, PipelineOptions
from device.publish import model_points
from device.runtime import Runtime
from device.sources.capture import Frame
from tests.device.runtime_helpers import facade, start_runtime, wait_for


def _frame(index: int) -> Frame:
    image = np.full((240, 320, 3), 128, np.uint8)
    image[100:120, 100:120] = 255
    return Frame(image, index, 1_700_000_000.0 + index, 0.0)


def _pipeline(running: Runtime, every: int = 1) -> Pipeline:
    return Pipeline(PipelineOptions(name="p", every=every), running.parts.feed.pipelines[0].slot)


@pytest.mark.parametrize(("index", "every", "analysed"), [(0, 1, True), (1, 1, True), (0, 2, True), (1, 2, False), (3, 3, True), (4, 3, False)])
def test_every_kth_frame_is_analysed_and_the_others_say_skipped(running: Runtime, index: int, every: int, analysed: bool) -> None:
    analysis = _pipeline(running, every).analyse(_frame(index))
    assert analysis.analysed is analysed
    assert analysis.inference == ("local" if analysed else SKIPPED)


def test_a_frame_that_was_not_analysed_writes_no_count(running: Runtime) -> None:
    pipeline = _pipeline(running, every=2)
    measure = FrameMeasure(index=1, captured_at=1_700_000_001.0, fps=10.0, inference_ms=0.0, latency_ms=1.0, dropped_frames=0)
    points = model_points(pipeline, pipeline.analyse(_frame(1)), measure, {"device": "d", "project": "p"}, None)
    assert [p.measurement for p in points] == ["frame"]  # no class_stats zeros either
    assert "count" not in points[0].fields and points[0].fields["inference"] == SKIPPED
    assert points[0].tags["model"] == "peaks" and points[0].tags["slot"] == "p"


def test_no_model_is_not_zero_objects() -> None:
    pipeline = Pipeline(PipelineOptions(), ModelSlot(lambda path: pytest.fail("nothing to load")))
    analysis = pipeline.analyse(_frame(0))
    assert analysis.detections is None and analysis.inference == NO_MODEL and analysis.status == NO_MODEL


def test_stages_run_in_order_and_cannot_invent_boxes(running: Runtime) -> None:
    seen: list[str] = []

    def keep_first(frame: Frame, analysis: Analysis) -> Analysis:
        seen.append(analysis.inference)
        if analysis.detections is None:
            with pytest.raises(ValueError, match="not analysed"):
                analysis.with_detections(Detections.empty())
            return analysis
        return analysis.with_detections(analysis.detections[np.arange(len(analysis.detections)) < 1])

    pipeline = _pipeline(running, every=2)
    pipeline.stages.append(keep_first)
    assert len(pipeline.analyse(_frame(0)).detections or []) <= 1
    assert pipeline.analyse(_frame(1)).detections is None
    assert seen == ["local", SKIPPED]


def test_a_gate_marks_every_model_and_writes_no_count(peak_bundle: Path, tmp_path: Path) -> None:
    config = DeviceConfig.model_validate({"source": "synthetic://?seed=4&width=320&height=240&fps=30",
                                          "model": str(peak_bundle), "data_dir": str(tmp_path), "port": 0})
    runtime, thread = start_runtime(config)
    runtime.parts.feed.gates.append(lambda frame: SimpleNamespace(reason="out_of_focus" if frame.index % 2 else ""))
    try:
        assert wait_for(lambda: runtime.parts.publisher.processed >= 12)
    finally:
        runtime.stop()
        thread.join(timeout=5)
        runtime.shutdown()
    frames = [h for h in runtime.parts.outbox.history(60) if h["frame_index"] > 2]
    gated = [h for h in frames if h["inference"] == "out_of_focus"]
    assert gated and all("count" not in h and not h["classes"] for h in gated)
    assert all(h["frame_index"] % 2 == 0 and "count" in h for h in frames if h["inference"] == "local")


def test_two_models_on_one_feed_each_write_their_own_points(running: Runtime, peak_bundle_v2: Path) -> None:
    slot = ModelSlot(lambda path: load_detector(path, "onnx", running.parts.config.data_dir))
    slot.load(peak_bundle_v2)
    running.parts.feed.add_pipeline(Pipeline(PipelineOptions(name="b", every=2, overlay=False), slot))
    start = running.parts.publisher.processed
    assert wait_for(lambda: running.parts.publisher.processed >= start + 10)
    latest = facade(running).latest()
    assert latest is not None and [a.pipeline for a in latest.analyses] == ["main", "b"]
    history = [h for h in running.parts.outbox.history(60) if h["model"] == "peaks-b"]
    assert {h["inference"] for h in history} == {"local", SKIPPED}
    assert all(("count" in h) == (h["inference"] == "local") for h in history)
    assert [m["pipeline"] for m in facade(running).health()["models"]] == ["main", "b"]
    with pytest.raises(ValueError, match="already runs"):
        running.parts.feed.add_pipeline(Pipeline(PipelineOptions(name="b"), slot))
    running.parts.feed.remove_model("b")
    count = running.parts.publisher.processed
    assert wait_for(lambda: running.parts.publisher.processed >= count + 3)
    assert [a.pipeline for a in facade(running).latest().analyses] == ["main"]  # type: ignore[union-attr]
