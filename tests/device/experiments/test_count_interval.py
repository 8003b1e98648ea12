"""The 95 % interval of a per-frame count is over blocks of consecutive frames: frames of one field
see the same objects, so treating them as independent would make the interval far too narrow."""

from __future__ import annotations

import math

import numpy as np
import pytest

from device.experiments.summary import block_count, count_stats, dropped_frames, t95


def _naive_half(values: list[int]) -> float:
    arr = np.asarray(values, float)
    return t95(len(arr)) * float(arr.std(ddof=1)) / math.sqrt(len(arr))


def test_a_count_that_steps_once_gets_a_wider_interval_than_independent_frames_would() -> None:
    values = [2] * 300 + [3] * 300  # the same objects for minutes, then one more drifts in
    stats = count_stats(values, None)
    low, high = stats["ci95"]
    assert stats["ci95_blocks"] == 10 and low < 2.5 < high
    assert (high - low) / 2 > 5 * _naive_half(values)  # the frame-by-frame formula claims ~0.04


def test_independent_counts_get_about_the_usual_interval() -> None:
    values = np.random.default_rng(1).poisson(20, 2000).tolist()
    low, high = count_stats(values, None)["ci95"]
    assert 0.5 < (high - low) / 2 / _naive_half(values) < 2.0 and low < 20 < high


@pytest.mark.parametrize(("n", "blocks"), [(0, 0), (1, 0), (2, 2), (9, 2), (10, 2), (15, 3), (50, 10), (5000, 10)])
def test_block_count(n: int, blocks: int) -> None:
    assert block_count(n) == blocks


@pytest.mark.parametrize(("indices", "camera", "dropped"), [
    ([0, 1, 2, 3], 4, 0),
    ([0, 2, 4, 6], 7, 3),
    ([10, 11, 0, 1], 4, 0),  # a restart within the experiment: the index starts again, no gap
    ([None, None], 2, 0),  # frames without an index (older records)
])
def test_dropped_frames_are_the_gaps_in_the_capture_index(indices: list[int | None], camera: int, dropped: int) -> None:
    assert dropped_frames([{"frame_index": i} for i in indices]) == {"camera": camera, "dropped": dropped}
