"""CenterNet losses: penalty-reduced focal loss on the heatmap, L1 on size and offset at centres,
and optionally a GIoU loss on the boxes they decode to (`--box-loss l1+giou`).

The focal loss down-weights the huge number of easy background cells and, through (1 - y)^4, the
cells right next to a centre, so touching objects still get their own sharp peaks. L1 on log size
and offset weighs a 1 px error the same on an 8 px speck and on a 60 px cell; GIoU scores the
decoded box by its overlap with the labelled one, which is what mAP@[.5:.95] measures.
"""

from __future__ import annotations

import tensorflow as tf

# Small objects are found easily (recall at IoU 0.1 is ~0.97) but a 2 px error is IoU < 0.5 on an
# 8 px speck: box regression gets twice the heatmap's weight.
_BOX_WEIGHT = 2.0


def focal_loss(logits: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Mean over objects of the CenterNet focal loss (alpha 2, beta 4), computed from logits."""
    prob = tf.sigmoid(logits)
    log_p = tf.math.log_sigmoid(logits)
    log_not_p = tf.math.log_sigmoid(-logits)
    positive = tf.cast(target >= 0.999, logits.dtype)
    pos_term = positive * tf.square(1.0 - prob) * log_p
    neg_term = (1.0 - positive) * tf.pow(1.0 - target, 4.0) * tf.square(prob) * log_not_p
    count = tf.maximum(tf.reduce_sum(positive), 1.0)
    return -tf.reduce_sum(pos_term + neg_term) / count


def masked_l1(pred: tf.Tensor, target: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    count = tf.maximum(tf.reduce_sum(mask), 1.0)
    return tf.reduce_sum(tf.abs(pred - target) * mask) / count


def _corners(offset: tf.Tensor, log_size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A cell's box in grid units, relative to the cell: centre = offset, size = exp(log size)."""
    half = 0.5 * tf.exp(tf.clip_by_value(log_size, -6.0, 6.0))
    return offset - half, offset + half


def masked_giou(outputs: dict[str, tf.Tensor], targets: dict[str, tf.Tensor]) -> tf.Tensor:
    """Mean of 1 - GIoU between the predicted and the labelled box at every supervised cell."""
    p1, p2 = _corners(outputs["offset"], outputs["log_size"])
    t1, t2 = _corners(targets["offset"], targets["log_size"])
    inter = tf.reduce_prod(tf.maximum(tf.minimum(p2, t2) - tf.maximum(p1, t1), 0.0), axis=-1)
    union = tf.reduce_prod(p2 - p1, axis=-1) + tf.reduce_prod(t2 - t1, axis=-1) - inter
    hull = tf.reduce_prod(tf.maximum(p2, t2) - tf.minimum(p1, t1), axis=-1)
    giou = inter / tf.maximum(union, 1e-9) - (hull - union) / tf.maximum(hull, 1e-9)
    mask = targets["mask"][..., 0]
    return tf.reduce_sum((1.0 - giou) * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def detection_loss(outputs: dict[str, tf.Tensor], targets: dict[str, tf.Tensor], giou_weight: float = 0.0) -> dict[str, tf.Tensor]:
    heat = focal_loss(outputs["heatmap"], targets["heatmap"])
    size = masked_l1(outputs["log_size"], targets["log_size"], targets["mask"])
    offset = masked_l1(outputs["offset"], targets["offset"], targets["mask"])
    total = heat + _BOX_WEIGHT * (size + offset)
    out = {"heatmap": heat, "size": size, "offset": offset}
    if giou_weight:
        out["giou"] = masked_giou(outputs, targets)
        total = total + giou_weight * out["giou"]
    return {"total": total, **out}
