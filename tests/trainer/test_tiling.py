"""The tiling rule: windows cover the frame with the promised overlap, each object is counted by
one tile, and the trainer's copy cuts and merges exactly as the device's does."""

from __future__ import annotations

import numpy as np
import pytest

from device.detections import Detections
from device.inference import tiling as dev
from trainer import tiling as tr


@pytest.mark.parametrize(("length", "tile", "overlap", "starts"), [
    (200, 256, 48, [0]),
    (256, 256, 48, [0]),
    (300, 256, 48, [0, 44]),
    (1000, 256, 64, [0, 186, 372, 558, 744]),
])
def test_windows_cover_the_frame_with_at_least_the_overlap(length: int, tile: int, overlap: int, starts: list[int]) -> None:
    got = tr.tile_starts(length, tile, overlap)
    assert got == starts == dev.tile_starts(length, tile, overlap)
    assert got[-1] + tile >= length
    assert all(b - a <= tile - overlap for a, b in zip(got, got[1:], strict=False))


@pytest.mark.parametrize("frame_hw", [(256, 256), (1040, 1388), (520, 696), (1024, 1024), (100, 3000)])
def test_trainer_and_device_cut_frames_alike(frame_hw: tuple[int, int]) -> None:
    policy_t = tr.TilePolicy(1.375, (352, 352), 64, 16)
    policy_d = dev.TilePolicy(1.375, (352, 352), 64, 16)
    ours, theirs = tr.plan_frame(frame_hw, policy_t), dev.plan_frame(frame_hw, policy_d)
    assert (ours.scale, ours.origins, ours.seams_x, ours.seams_y) == (theirs.scale, theirs.origins, theirs.seams_x, theirs.seams_y)
    assert len(ours.origins) <= 16
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (*frame_hw, 3), dtype=np.uint8)
    tiles_t, _ = tr.cut_tiles(image, policy_t)
    tiles_d = dev.cut_tiles(image, theirs, policy_d)
    np.testing.assert_array_equal(tiles_t, np.stack(tiles_d))


def test_a_big_frame_is_shrunk_to_the_tile_budget() -> None:
    policy = tr.TilePolicy(1.375, (352, 352), 64, 16)
    layout = tr.plan_frame((1040, 1388), policy)
    assert layout.scale < 1.375 and len(layout.origins) <= 16
    assert tr.plan_frame((1040, 1388), tr.TilePolicy(1.375, (352, 352), 64, 64)).scale == 1.375


def _random_tile_detections(layout: tr.TileLayout, rng: np.random.Generator, n: int = 40) -> list[np.ndarray]:
    out = []
    for _ in layout.origins:
        xy = rng.uniform(0, 300, (n, 2))
        wh = rng.uniform(4, 40, (n, 2))
        out.append(np.concatenate([xy, xy + wh], axis=1))
    return out


def test_trainer_and_device_merge_tiles_alike() -> None:
    rng = np.random.default_rng(1)
    policy_t, policy_d = tr.TilePolicy(1.0, (352, 352), 64, 16), dev.TilePolicy(1.0, (352, 352), 64, 16)
    layout_t, layout_d = tr.plan_frame((700, 900), policy_t), dev.plan_frame((700, 900), policy_d)
    boxes = _random_tile_detections(layout_t, rng)
    scores = [rng.uniform(0, 1, len(b)) for b in boxes]
    classes = [rng.integers(0, 2, len(b)) for b in boxes]
    xyxy, score, cls = tr.merge_tiles(boxes, scores, classes, layout_t, policy_t)
    parts = [Detections(b, s, c) for b, s, c in zip(boxes, scores, classes, strict=True)]
    merged = dev.merge_tiles(parts, layout_d, policy_d)
    assert 0 < len(merged) < sum(len(b) for b in boxes)  # foreign-core detections were dropped
    np.testing.assert_allclose(merged.xyxy, xyxy, atol=1e-3)
    np.testing.assert_allclose(merged.scores, score, atol=1e-6)
    np.testing.assert_array_equal(merged.class_ids, cls)


def test_an_object_seen_by_two_tiles_is_counted_once_and_touching_objects_stay_two() -> None:
    policy = tr.TilePolicy(1.0, (256, 256), 64, 16)
    layout = tr.plan_frame((256, 448), policy)  # two tiles side by side: x 0-256 and 192-448
    assert layout.origins == [(0, 0), (0, 192)] and layout.seams_x == [224.0]
    whole = np.array([[200.0, 100, 220, 120], [221, 100, 241, 120]])  # touching, centres 210 and 231
    left, right = whole, whole - [192, 0, 192, 0]  # both tiles see both objects whole
    shifted = right + [1.5, 0, 1.5, 0]  # ...the right tile places them 1.5 px further right
    for second in (right, shifted):
        xyxy, _, _ = tr.merge_tiles([left, second], [np.array([0.9, 0.8])] * 2, [np.array([0, 0])] * 2, layout, policy)
        assert len(xyxy) == 2
    straddling = np.array([[213.0, 100, 233, 120]])  # centre 223 in the left core; the right tile sees it at 225
    xyxy, _, _ = tr.merge_tiles([straddling, straddling - [190, 0, 190, 0]], [np.array([0.9]), np.array([0.8])],
                                [np.array([1]), np.array([1])], layout, policy)
    assert len(xyxy) == 1  # the cross-tile NMS at the seam keeps the better one


def test_predict_keeps_the_aspect_of_every_frame_size() -> None:
    """A 20x20 px box in network pixels is a square in a 256x256 and in a 1388x1040 frame alike."""
    from trainer.dataset import Sample
    from trainer.predict import predict

    policy = tr.TilePolicy(1.375, (352, 352), 64, 64)

    def runner(batch: np.ndarray) -> dict[str, np.ndarray]:  # one object at the centre of every tile
        n = len(batch)
        return {"boxes": np.tile([[[166.0, 166.0, 186.0, 186.0]]], (n, 1, 1)), "scores": np.full((n, 1), 0.9),
                "classes": np.zeros((n, 1))}

    samples = [Sample(f"{hw}", np.zeros((*hw, 3), np.uint8), np.zeros((0, 4), np.float32), np.zeros(0, np.int32))
               for hw in [(256, 256), (1040, 1388)]]
    small, big = predict(runner, samples, policy)
    assert len(small.xyxy) == 1 and len(big.xyxy) == len(tr.plan_frame((1040, 1388), policy).origins)
    for boxes in (small.xyxy, big.xyxy):
        np.testing.assert_allclose(boxes[:, 2] - boxes[:, 0], 20 / 1.375, atol=1e-6)
        np.testing.assert_allclose(boxes[:, 3] - boxes[:, 1], 20 / 1.375, atol=1e-6)
