"""The in-graph peak decoder and the training targets, checked with literal maps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainer.augment import encode_targets
from trainer.model import STRIDE, PeakDecoder

H, W, C = 64, 96, 3  # input pixels; maps are 16 x 24 cells


def _maps() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    heat = np.full((1, H // STRIDE, W // STRIDE, C), -9.0, np.float32)
    size = np.zeros((1, H // STRIDE, W // STRIDE, 2), np.float32)
    offset = np.zeros((1, H // STRIDE, W // STRIDE, 2), np.float32)
    return heat, size, offset


def _decode(heat: np.ndarray, size: np.ndarray, offset: np.ndarray, k: int = 5) -> tuple[np.ndarray, ...]:
    boxes, scores, classes = PeakDecoder(k, (H, W))(heat, size, offset)
    return np.asarray(boxes)[0], np.asarray(scores)[0], np.asarray(classes)[0]


def test_one_peak_becomes_one_box_in_input_pixels() -> None:
    heat, size, offset = _maps()
    heat[0, 5, 7, 2] = 3.0
    size[0, 5, 7] = (math.log(4.0), math.log(2.0))  # 16 x 8 pixels
    offset[0, 5, 7] = (0.5, 0.25)
    boxes, scores, classes = _decode(heat, size, offset)
    np.testing.assert_allclose(boxes[0], [22.0, 17.0, 38.0, 25.0], atol=1e-4)  # centre (30, 21)
    assert scores[0] == pytest.approx(1 / (1 + math.exp(-3.0)), abs=1e-6)
    assert classes[0] == 2
    assert scores[1] < 1e-3  # nothing else in the frame


def test_neighbouring_cells_are_suppressed_but_touching_objects_two_cells_apart_survive() -> None:
    heat, size, offset = _maps()
    heat[0, 8, 10, 0] = 2.0
    heat[0, 8, 11, 0] = 0.5  # the saddle between them: suppressed by the 3x3 max-pool
    heat[0, 8, 12, 0] = 1.0  # a touching neighbour two cells away: kept
    _, scores, classes = _decode(heat, size, offset)
    assert (scores > 0.5).sum() == 2
    np.testing.assert_array_equal(classes[:2], [0, 0])


def test_boxes_are_clipped_to_the_input() -> None:
    heat, size, offset = _maps()
    heat[0, 0, 0, 1] = 4.0
    size[0, 0, 0] = (math.log(10.0), math.log(10.0))  # 40 px box centred at (0, 0)
    boxes, _, classes = _decode(heat, size, offset)
    np.testing.assert_allclose(boxes[0], [0.0, 0.0, 20.0, 20.0], atol=1e-4)
    assert classes[0] == 1


def test_targets_put_exact_peaks_at_object_centres() -> None:
    boxes = np.array([[8.0, 12.0, 24.0, 20.0], [40.0, 40.0, 46.0, 46.0]], np.float32)
    targets = encode_targets(boxes, np.array([0, 2]), (H, W), C)
    assert targets.heatmap.shape == (16, 24, 3)
    peaks = np.argwhere(targets.heatmap >= 0.999)
    np.testing.assert_array_equal(peaks, [[4, 4, 0], [10, 10, 2]])
    np.testing.assert_allclose(np.exp(targets.log_size[4, 4]) * STRIDE, [16.0, 8.0], rtol=1e-5)
    np.testing.assert_allclose(targets.offset[4, 4], [0.0, 0.0])
    np.testing.assert_allclose(targets.offset[10, 10], [0.75, 0.75])
    np.testing.assert_allclose(targets.offset[10, 11], [-0.25, 0.75])  # neighbour: offset to the same centre
    np.testing.assert_allclose(targets.log_size[9, 9], [np.log(1.5), np.log(1.5)], rtol=1e-5)
    assert targets.mask[4, 4, 0] == 1.0 and targets.mask[5, 5, 0] == 0.5
    assert targets.mask.sum() == 2 * (1 + 8 * 0.5)
    assert 0 < targets.heatmap[4, 5, 0] < 1  # gaussian shoulder, not a second peak
