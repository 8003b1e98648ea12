"""Whole-field drift: how far the stage (everything in view) moved between two frames.

The stage moves every object by the same vector; swimmers add their own velocity in all
directions and a few matches are wrong. A coordinate-wise median of the frame-to-frame
displacements, refined by averaging the ones close to it, follows the still majority and
ignores both, without any image registration (no extra pixel work per frame).
"""

from __future__ import annotations

import numpy as np

MIN_MATCHES = 3  # fewer matched objects: keep the previous estimate
_INLIER_PX = 1.5


def estimate_drift(displacements: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """(2,) drift in px/frame from (n, 2) displacements of objects matched in consecutive frames."""
    if len(displacements) < MIN_MATCHES:
        return previous
    ordered = np.sort(displacements, axis=0)  # a median without np.median's overhead (~10x)
    n = len(ordered)
    median = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2
    close = np.abs(displacements - median).max(axis=1) <= _INLIER_PX
    if close.sum() >= MIN_MATCHES:
        return np.asarray(displacements[close].mean(axis=0))
    return np.asarray(median)
