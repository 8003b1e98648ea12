"""Exact Poisson intervals (Garwood) and the volumes behind a concentration."""

from __future__ import annotations

import pytest

from device.tracking.concentration import (
    concentration,
    flowed_volume_ul,
    imaged_volume_ul,
    poisson_interval,
)


@pytest.mark.parametrize(("count", "low", "high"), [  # published chi-square table values
    (0, 0.0, 3.689), (1, 0.0253, 5.572), (5, 1.623, 11.668), (10, 4.795, 18.390), (100, 81.364, 121.627),
])
def test_exact_interval(count: int, low: float, high: float) -> None:
    got = poisson_interval(count)
    assert got == pytest.approx((low, high), abs=2e-3)


def test_large_counts_use_the_approximation_seamlessly() -> None:
    exact = poisson_interval(2000)
    approx = poisson_interval(2001)
    assert approx[0] == pytest.approx(exact[0] + 1, rel=2e-3) and approx[1] == pytest.approx(exact[1] + 1, rel=2e-3)


def test_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        poisson_interval(-1)


def test_concentration_per_microlitre() -> None:
    volume = flowed_volume_ul(6.0, 30.0)  # 6 µL/min for 30 s
    assert volume == pytest.approx(3.0)
    conc = concentration(30, volume)
    assert conc is not None and conc.per_ul == pytest.approx(10.0)
    assert conc.low_per_ul < 10 < conc.high_per_ul
    assert concentration(3, 0.0) is None
    assert imaged_volume_ul(1000, 1000, 1.0, 100.0) == pytest.approx(0.1)
