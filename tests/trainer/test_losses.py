"""The GIoU box loss (--box-loss l1+giou) equals a hand computation on decoded boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainer.accelerator import load_tensorflow

load_tensorflow(announce=False)

from trainer.losses import detection_loss, masked_giou  # noqa: E402


def _maps(offsets: list[tuple[float, float]], sizes: list[tuple[float, float]]) -> dict[str, object]:
    """One row of cells, each supervised (mask 1): offset (cx, cy) and log of (w, h) in grid units."""
    import tensorflow as tf

    n = len(offsets)
    return {"offset": tf.constant(np.array(offsets, np.float32).reshape(1, 1, n, 2)),
            "log_size": tf.constant(np.log(np.array(sizes, np.float32)).reshape(1, 1, n, 2)),
            "mask": tf.ones((1, 1, n, 1))}


def test_giou_of_known_boxes() -> None:
    target = _maps([(0.5, 0.5), (0.5, 0.5), (0.5, 0.5)], [(2, 2), (2, 2), (2, 2)])
    # the same box (loss 0); one twice as wide (IoU 0.5, hull = union: loss 0.5);
    # one moved 3 cells right, 2x2 (no overlap, hull 5x2 = 10, union 8: GIoU -0.2, loss 1.2)
    pred = _maps([(0.5, 0.5), (0.5, 0.5), (3.5, 0.5)], [(2, 2), (4, 2), (2, 2)])
    assert float(masked_giou(pred, target)) == pytest.approx((0.0 + 0.5 + 1.2) / 3, abs=1e-5)  # type: ignore[arg-type]


def test_the_term_joins_the_total_only_when_asked() -> None:
    import tensorflow as tf

    target = {**_maps([(0.5, 0.5)], [(2, 2)]), "heatmap": tf.zeros((1, 1, 1, 1))}
    pred = {**_maps([(0.5, 0.5)], [(4, 2)]), "heatmap": tf.fill((1, 1, 1, 1), -5.0)}
    plain = detection_loss(pred, target)  # type: ignore[arg-type]
    both = detection_loss(pred, target, giou_weight=1.0)  # type: ignore[arg-type]
    assert "giou" not in plain and float(both["giou"]) == pytest.approx(0.5, abs=1e-5)
    assert float(both["total"]) == pytest.approx(float(plain["total"]) + 0.5, abs=1e-5)
    assert math.isfinite(float(both["total"]))
