"""The automatic per-frame scale (issue 26): frames of unknown µm per pixel run at the scale that
brings their objects to the size the model was trained at; the scale is on every frame's point and
the boxes come back in the frame's own pixels.

The pipeline tests run a single-scale blob finder as the backend: it sees only blobs within 1.6x of
the size it was "trained" at (as a CNN trained at one magnification misses objects far from it),
and its boxes follow the blobs' real outlines (as a trained box regression does)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.detections import Detections
from device.drift.baseline import build_baseline
from device.inference.autoscale import AutoScale, AutoScaleSettings
from device.inference.detector import Detector
from device.models.bundle import load_bundle
from device.pipeline import ModelSlot, Pipeline, PipelineOptions, trained_object_px
from device.sources.capture import Frame
from tests.device.inference.test_tiling import _tiled_peaks

TRAINED_PX = 16.0  # the blob side the model "learnt" (network pixels, card scale 1)


# ---- the rule ------------------------------------------------------------------------------
def test_objects_at_the_trained_size_keep_the_cards_scale() -> None:
    auto = AutoScale(1.0, TRAINED_PX)
    for _ in range(20):
        assert auto.observe(np.full(10, TRAINED_PX * 1.15)).scale == 1.0  # within the training's scale jitter
    assert auto.switches == 0 and auto.live_px == pytest.approx(TRAINED_PX * 1.15)


def test_the_first_frame_of_evidence_is_run_again_at_the_scale_it_asks_for() -> None:
    auto = AutoScale(1.5, 24.0)  # trained: 24 network px at scale 1.5, i.e. 16 frame px
    decision = auto.observe(np.full(8, 32.0))  # objects twice as large in the frame: a 2x objective
    assert decision.rerun and decision.scale == pytest.approx(0.75) and auto.factor == pytest.approx(0.5)
    assert not auto.observe(np.full(8, 32.0)).rerun  # at 0.75 they reach the network at 24 px: settled
    assert auto.switches == 1


def test_later_frames_move_the_scale_on_the_pooled_estimate_without_an_extra_pass() -> None:
    auto = AutoScale(1.0, TRAINED_PX)
    auto.observe(np.full(5, TRAINED_PX))
    decision = next(d for d in (auto.observe(np.full(5, TRAINED_PX / 2)) for _ in range(8)) if d.scale != 1.0)
    assert not decision.rerun and decision.scale == pytest.approx(2.0 ** 0.5)  # pooled median 12 px: wanted 1.33
    assert auto.quantize(3.3) == pytest.approx(2.0 ** 1.75)  # a quarter-octave grid


def test_the_scale_stays_within_four_times_the_cards() -> None:
    auto = AutoScale(1.0, TRAINED_PX)
    assert auto.observe(np.full(5, 0.5)).scale == pytest.approx(4.0)
    assert not auto.observe(np.full(5, 0.5)).rerun and auto.scale == pytest.approx(4.0)
    assert auto.quantize(1e-6) == pytest.approx(0.25)


def test_frames_with_too_few_objects_say_nothing_and_a_probe_comes_after_a_while() -> None:
    auto = AutoScale(1.0, TRAINED_PX, AutoScaleSettings(min_objects=3, probe_after=4))
    decisions = [auto.observe(np.full(2, 50.0)) for _ in range(4)]  # two objects: too few to judge
    assert [d.probe for d in decisions] == [False, False, False, True] and decisions[-1].scale == 0.5
    assert auto.scale == 1.0 and auto.switches == 0  # an empty field never moves the scale
    assert not auto.probed(0.5, np.full(2, 40.0)) and auto.scale == 1.0
    assert [auto.observe(np.zeros(0)).scale for _ in range(4)][-1] == 2.0  # the next rung of the ladder
    assert auto.probed(2.0, np.full(5, 8.0)) and auto.scale == 2.0


def test_nonsense_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        AutoScale(0.0, TRAINED_PX)


# ---- the pipeline, end to end --------------------------------------------------------------
class BlobFinder:
    """Backend: bright blobs of the (network-pixel) tensor, only those within 1.6x of TRAINED_PX."""

    name = "blobs"

    def __init__(self) -> None:
        self.passes = 0

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        self.passes += 1
        mask = (tensor[0, :, :, 0] > 0.5).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        boxes = [(x, y, x + w, y + h) for x, y, w, h, _ in stats[1:n]
                 if 1 / 1.6 <= np.sqrt(w * h) / TRAINED_PX <= 1.6 and x > 0 and y > 0]
        k = len(boxes)
        return {"boxes": np.asarray(boxes, np.float32).reshape(1, k, 4), "scores": np.full((1, k), 0.99, np.float32),
                "classes": np.zeros((1, k), np.float32)}


def _bundle(tmp_path: Path, frame_um: list[float | None] | None = None, trained_um: float | None = None) -> Path:
    """A `resize: tile` bundle at scale 1 whose baseline says objects were TRAINED_PX across (in
    each validation frame's pixels, of `frame_um` µm when given)."""
    folder = _tiled_peaks(tmp_path / "blobs", (256, 256), 48)
    card = json.loads((folder / "model.json").read_text())
    side = TRAINED_PX / 2
    seen = Detections(np.asarray([[50 - side, 50 - side, 50 + side, 50 + side]] * 12, np.float32), np.full(12, 0.99), np.zeros(12))
    baseline = build_baseline([seen] * 4, card["classes"], "validation", um_per_pixel=frame_um)
    card.setdefault("metrics", {})["baseline"] = baseline.model_dump()
    if trained_um:
        card["format_version"], card["input"]["um_per_pixel"] = 3, trained_um
    (folder / "model.json").write_text(json.dumps(card))
    return folder


def _frame(side: float, index: int, n: int = 9) -> tuple[Frame, np.ndarray]:
    """Grey 480x360 frame with `n` bright squares of `side` px on a grid; their boxes."""
    image = np.full((360, 480, 3), 25, np.uint8)
    boxes = []
    for i in range(n):
        x, y = 40 + (i % 3) * 150, 40 + (i // 3) * 110
        cv2.rectangle(image, (x, y), (int(x + side) - 1, int(y + side) - 1), (230, 230, 230), -1)
        boxes.append((x, y, x + side, y + side))
    return Frame(image, index, time.time(), time.perf_counter()), np.asarray(boxes, np.float32)


def _pipeline(tmp_path: Path, auto: bool = True) -> tuple[Pipeline, BlobFinder]:
    backend = BlobFinder()
    slot = ModelSlot(lambda path: Detector(load_bundle(path), backend))
    slot.load(_bundle(tmp_path))
    return Pipeline(PipelineOptions(auto_scale=auto), slot), backend


def test_the_bundle_says_what_size_it_was_trained_at(tmp_path: Path) -> None:
    assert trained_object_px(Detector(load_bundle(_bundle(tmp_path)), BlobFinder())) == pytest.approx(TRAINED_PX)
    assert trained_object_px(Detector(load_bundle(_tiled_peaks(tmp_path / "bare", (256, 256), 0)), BlobFinder())) is None
    # validation frames at 0.5 and 1.0 µm/px (objects 8 and 16 µm), trained at 0.25 µm/px: in µm, not frame pixels
    mixed = _bundle(tmp_path / "mixed", frame_um=[0.5, 0.5, 1.0, 1.0], trained_um=0.25)
    assert trained_object_px(Detector(load_bundle(mixed), BlobFinder())) == pytest.approx(12 / 0.25, rel=0.01)  # median of 8 and 16 µm


def test_objects_half_again_as_large_run_at_the_scale_that_shrinks_them_back(tmp_path: Path) -> None:
    pipeline, backend = _pipeline(tmp_path)
    runs = []
    for index in range(5):
        frame, truth = _frame(TRAINED_PX * 1.5, index)
        runs.append(pipeline.analyse(frame))
    first, later = runs[0], runs[1:]
    assert first.fields["scale_passes"] == 2 and first.fields["auto_scale"] == pytest.approx(2 ** -0.5, rel=1e-3)
    assert all(r.fields["scale_passes"] == 1 and r.fields["input_scale"] == pytest.approx(2 ** -0.5, rel=1e-3) for r in later)
    for run in runs:
        found = run.detections.xyxy[np.lexsort(run.detections.xyxy.T[:2])]
        np.testing.assert_allclose(found, truth[np.lexsort(truth.T[:2])], atol=2.5)  # in the frame's pixels


def test_objects_too_large_to_be_seen_are_found_by_a_probe_and_then_counted(tmp_path: Path) -> None:
    pipeline, _ = _pipeline(tmp_path)
    side = TRAINED_PX * 2.4  # out of the finder's range at the card's scale: nothing found
    counts, passes = [], []
    for index in range(AutoScaleSettings().probe_after + 4):
        run = pipeline.analyse(_frame(side, index)[0])
        counts.append(len(run.detections))
        passes.append(run.fields["scale_passes"])
    probe = AutoScaleSettings().probe_after - 1
    assert counts[:probe] == [0] * probe and passes[probe] == 2  # the probe at x0.5 ...
    assert counts[probe:] == [9] * (len(counts) - probe)  # ... finds them, and they stay found
    assert pipeline.analyse(_frame(side, 99)[0]).fields["auto_scale"] == pytest.approx(0.5)


def test_a_known_um_per_pixel_sets_the_scale_and_scale_card_keeps_the_bundles(tmp_path: Path) -> None:
    pipeline, _ = _pipeline(tmp_path)
    frame, _ = _frame(TRAINED_PX * 1.5, 0)
    calibrated = pipeline.analyse(frame, um_per_pixel=0.5)
    assert "auto_scale" not in calibrated.fields and calibrated.fields["input_scale"] == 1.0
    fixed, _ = _pipeline(tmp_path / "card", auto=False)
    run = fixed.analyse(frame)
    assert "auto_scale" not in run.fields and run.fields["input_scale"] == 1.0 and len(run.detections) == 9
