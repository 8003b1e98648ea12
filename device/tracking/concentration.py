"""Objects per µL from counts, with an exact (Garwood) Poisson 95 % confidence interval.

Flow: objects crossing a line that spans the channel, divided by the volume that flowed past it
(flow rate x time). Chamber: objects in view divided by the imaged volume (field area x depth).
Counts of independent arrivals are Poisson, so the interval of the count is the interval of the
concentration; it is exact (chi-square quantiles by bisection on the Poisson CDF) because the
counts that matter most, the small ones, are where the normal approximation fails.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

UM3_PER_UL = 1e9
_Z95 = 1.959963984540054
_EXACT_UP_TO = 2000  # above: the Wilson-Hilferty approximation is exact to < 0.1 %


def _poisson_cdf(n: int, mu: float) -> float:
    """P(X <= n) for X ~ Poisson(mu), summed in log space (stable for large mu)."""
    if n < 0:
        return 0.0
    if mu <= 0:
        return 1.0
    k = np.arange(n + 1)
    log_factorials = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])
    logs = -mu + k * math.log(mu) - log_factorials
    top = logs.max()
    return float(min(1.0, math.exp(top) * np.exp(logs - top).sum()))


def _solve(target: float, n: int, lo: float, hi: float) -> float:
    """mu where P(X <= n | mu) = target (the CDF falls as mu grows)."""
    for _ in range(60):
        mid = (lo + hi) / 2
        if _poisson_cdf(n, mid) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _wilson_hilferty(n: float, z: float) -> float:
    return n * (1 - 1 / (9 * n) + z / (3 * math.sqrt(n))) ** 3


@functools.lru_cache(maxsize=4096)
def poisson_interval(count: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact two-sided interval for the mean of a Poisson variable that gave `count` (cached:
    counts grow one by one and the live view asks for the same ones every second)."""
    if count < 0:
        raise ValueError("a count cannot be negative")
    if alpha != 0.05:
        raise ValueError("only the 95 % interval is implemented")
    if count > _EXACT_UP_TO:
        return _wilson_hilferty(count, -_Z95), _wilson_hilferty(count + 1, _Z95)
    hi_bound = count + 10 * math.sqrt(count + 1) + 10
    lower = 0.0 if count == 0 else _solve(1 - alpha / 2, count - 1, 0.0, hi_bound)
    upper = _solve(alpha / 2, count, 0.0, hi_bound)
    return lower, upper


@dataclass(frozen=True)
class Concentration:
    count: int
    volume_ul: float
    per_ul: float
    low_per_ul: float
    high_per_ul: float

    def fields(self, prefix: str = "") -> dict[str, float | int]:
        return {f"{prefix}count": self.count, f"{prefix}volume_ul": self.volume_ul, f"{prefix}per_ul": self.per_ul,
                f"{prefix}per_ul_low": self.low_per_ul, f"{prefix}per_ul_high": self.high_per_ul}


def concentration(count: int, volume_ul: float) -> Concentration | None:
    """`count` objects in `volume_ul`, with the 95 % interval; None before any volume was seen."""
    if volume_ul <= 0:
        return None
    low, high = poisson_interval(count)
    return Concentration(count, volume_ul, count / volume_ul, low / volume_ul, high / volume_ul)


def flowed_volume_ul(flow_rate_ul_min: float, seconds: float) -> float:
    return flow_rate_ul_min * max(seconds, 0.0) / 60.0


def imaged_volume_ul(width_px: int, height_px: int, um_per_pixel: float, depth_um: float) -> float:
    return width_px * height_px * um_per_pixel**2 * depth_um / UM3_PER_UL
