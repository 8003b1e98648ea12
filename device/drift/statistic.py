"""The drift statistics, written once: population stability index and medians from binned counts.

Population stability index (PSI) of a live histogram `a` against the baseline's `e`, both as
shares of their totals over the same bins:

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

It is the symmetric Kullback-Leibler divergence of the two binned distributions: 0 when they are
equal, about 0.1 for a visible shift, above 0.25 for a major one (the credit-scoring rule of
thumb). Each bin is smoothed with half a count (shares (c + 0.5) / (n + 0.5 B)) so an empty bin
gives a large but finite term. Under no change the PSI of n live values against m baseline values
in B bins is about (B - 1) (1/n + 1/m) (a chi-square in disguise), which is why the monitor waits
for `min_objects` before judging histograms.
"""

from __future__ import annotations

import numpy as np

SMOOTHING = 0.5  # counts added to every bin


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI of `actual` counts against `expected` counts (same bins)."""
    e = np.asarray(expected, np.float64) + SMOOTHING
    a = np.asarray(actual, np.float64) + SMOOTHING
    e /= e.sum()
    a /= a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def binned_median(counts: np.ndarray, edges: np.ndarray) -> float | None:
    """Median of values held as counts over bins `edges` (len(counts) + 1), interpolated inside its bin."""
    total = float(counts.sum())
    if total <= 0:
        return None
    cumulative = np.cumsum(counts)
    i = int(np.searchsorted(cumulative, total / 2.0))
    before = float(cumulative[i - 1]) if i else 0.0
    inside = float(counts[i]) or 1.0
    return float(edges[i] + (edges[i + 1] - edges[i]) * (total / 2.0 - before) / inside)
