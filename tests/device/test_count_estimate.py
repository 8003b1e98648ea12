"""A bundle with count_models writes `count_estimate` beside `count` on the frame and each class's
points, and the live page's stats carry it; a bundle without writes none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from device.analysis import Analysis
from device.detections import Detections
from device.metrics.stats import FrameMeasure
from device.models.bundle import ModelCard
from device.pipeline import ModelSlot, Pipeline, PipelineOptions
from device.publish import model_points
from tests.device.bundles import card

RATIO = {"method": "ratio", "k": 1.25, "loo_mae_boxes": 4.0, "loo_mae": 1.0, "images": 12}


def _points(count_models: dict[str, object] | None) -> list:  # type: ignore[type-arg]
    extra = {"format_version": 4, "count_models": count_models} if count_models else {}
    model_card = ModelCard.model_validate(card("cells", ["cell", "debris"], 64, 64, **extra))
    boxes = np.array([[10 * i, 0, 10 * i + 8, 8] for i in range(9)], np.float32)
    detections = Detections(boxes, np.full(9, 0.9, np.float32), np.array([0] * 8 + [1], np.int32))
    pipeline = Pipeline(PipelineOptions(name="main"), ModelSlot(lambda path: pytest.fail("nothing to load")))
    measure = FrameMeasure(index=0, captured_at=1_700_000_000.0, fps=5.0, inference_ms=1.0, latency_ms=2.0, dropped_frames=0)
    analysis = Analysis("main", "local", detections, model_card)
    return model_points(pipeline, analysis, measure, {"device": "d"}, None, None, (240, 320))


def test_corrected_counts_sit_beside_the_box_counts() -> None:
    frame, *classes = _points({"cell": RATIO})
    assert (frame.fields["count"], frame.fields["count_estimate"]) == (9, 11)  # 8 cells x 1.25 = 10, + 1 debris box
    by_class = {p.tags["class"]: p.fields for p in classes}
    assert (by_class["cell"]["count"], by_class["cell"]["count_estimate"]) == (8, 10)
    assert (by_class["debris"]["count"], by_class["debris"]["count_estimate"]) == (1, 1)


def test_a_bundle_without_count_models_writes_no_estimate() -> None:
    points = _points(None)
    assert all("count_estimate" not in p.fields for p in points) and points[0].fields["count"] == 9


def test_a_running_device_stores_and_shows_the_corrected_count(tmp_path: Path) -> None:
    """End to end: a bundle whose card corrects cells x2 runs on the synthetic microscope; the
    stored frame and class points and the live page's stats agree with the boxes found."""
    import json

    from device.config import DeviceConfig
    from tests.device.bundles import peak_detector_bundle
    from tests.device.runtime_helpers import start_runtime, wait_for

    bundle = peak_detector_bundle(tmp_path / "peaks")
    card_path = bundle / "model.json"
    model_card = json.loads(card_path.read_text())
    model_card.update(format_version=4, count_models={"cell": {**RATIO, "k": 2.0}})
    card_path.write_text(json.dumps(model_card))
    config = DeviceConfig.model_validate({"source": "synthetic://?seed=4&width=320&height=240&fps=30", "model": str(bundle),
                                          "data_dir": str(tmp_path / "data"), "port": 0})
    runtime, thread = start_runtime(config)
    try:
        assert wait_for(lambda: runtime.parts.publisher.processed >= 5)
        history = [f for f in runtime.parts.outbox.history(60) if "count" in f]
        assert history and all("count_estimate" in f for f in history)
        for f in history:
            cells = int(f["classes"]["cell"]["count"])
            assert f["classes"]["cell"]["count_estimate"] == 2 * cells
            assert f["count_estimate"] == f["count"] + cells  # the others are counted box by box
        assert any(f["classes"]["cell"]["count"] for f in history)  # the check above saw cells
        live = runtime.parts.board.live_stats()
        assert live["count"] is not None and live["count_estimate"] == live["count"] + live["counts"].get("cell", 0)
    finally:
        runtime.stop()
        thread.join(timeout=5)
        runtime.shutdown()
