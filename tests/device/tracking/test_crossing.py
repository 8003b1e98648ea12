"""Counting line: geometry, bad lines, once-per-direction counting, and flux against the truth."""

from __future__ import annotations

import numpy as np
import pytest

from device.sources.synthetic import SyntheticConfig
from device.tracking.concentration import UM3_PER_UL, poisson_interval
from device.tracking.crossing import CrossingCounter, CrossingLine, LineError
from device.tracking.settings import TrackingSettings
from device.tracking.simulate import sequence
from device.tracking.stage import TrackingStage

DOWN = CrossingLine(50, 0, 50, 100)  # drawn top to bottom: forward is left -> right


@pytest.mark.parametrize(("before", "after", "expected"), [
    ((40, 50), (60, 50), 1),   # left to right through the middle
    ((60, 50), (40, 50), -1),  # right to left
    ((40, 50), (45, 50), 0),   # stops short
    ((40, 150), (60, 150), 0),  # passes below the segment's end
    ((40, 10), (60, 30), 1),   # diagonal through
    ((50, 50), (50, 60), 0),   # moves along the line
])
def test_crossing_sign(before: tuple[float, float], after: tuple[float, float], expected: int) -> None:
    assert DOWN.crossings(np.array([before], float), np.array([after], float)).tolist() == [expected]


@pytest.mark.parametrize(("coords", "message"), [
    ([10, 10, 10, 10], "zero length"),
    ([10, 10, 10.5, 10.5], "zero length"),
    ([10, 10, 700, 10], "outside the 640x480 frame"),
    ([-1, 10, 100, 10], "outside"),
    ([10, 10, 100], "four numbers"),
    ("10,10,20,20", "four numbers"),
    ([10, "a", 20, 20], "four numbers"),
    ([10, float("nan"), 20, 20], "finite"),
])
def test_bad_lines_are_refused_with_a_reason(coords: object, message: str) -> None:
    with pytest.raises(LineError, match=message):
        CrossingLine.checked(coords, 640, 480)


def test_each_track_counts_once_per_direction() -> None:
    counter = CrossingCounter(DOWN, 2, 0.0)
    ids, classes = np.array([7]), np.array([1])
    for before, after in [((45, 50), (55, 50)), ((55, 50), (45, 50)), ((45, 50), (55, 50))]:  # jitter on the line
        counter.add(np.array([before], float), np.array([after], float), ids, classes)
    assert counter.counts.tolist() == [[0, 0], [1, 1]]
    assert counter.take_interval().tolist() == [[0, 0], [1, 1]] and counter.interval.sum() == 0


def test_flow_crossings_within_the_poisson_interval_of_the_true_flux() -> None:
    """Laminar channel flow; a line across the channel; every true crossing is known by object id.
    The count must sit in the interval of the true count, and the concentration's interval must
    hold the true concentration of the simulated sample."""
    um_per_px, depth_um, fps = 0.65, 20.0, 15.0
    cfg = SyntheticConfig(seed=2, density=150, motion="flow", flow_speed=5.0, drift=0.0, width=640, height=480)
    mean_speed_um_s = cfg.flow_speed * 2 / 3 * fps * um_per_px
    flow_ul_min = mean_speed_um_s * (cfg.height * um_per_px) * depth_um / UM3_PER_UL * 60
    stage = TrackingStage(TrackingSettings(line=(320, 0, 320, 480), subtract_drift=False, flow_rate_ul_min=flow_ul_min),
                          um_per_px)
    last_x: dict[int, float] = {}
    crossed: set[int] = set()
    for frame in sequence(cfg, 300, fps):
        centres = (frame.truth.xyxy[:, 0] + frame.truth.xyxy[:, 2]) / 2
        for oid, x in zip(frame.truth_ids.tolist(), centres.tolist(), strict=True):
            if last_x.get(oid, x) < 320 <= x:
                crossed.add(oid)
            last_x[oid] = x
        stage.update(frame.detections, frame.t, frame.image.shape[:2], "model", ("cell", "crystal", "debris"), {})
    live = stage.live()
    counted = live["crossed_forward"]
    low, high = poisson_interval(counted)
    assert len(crossed) > 40 and low <= len(crossed) <= high, (counted, len(crossed))
    assert live["crossed_reverse"] == 0
    true_per_ul = cfg.density / 1e6 / um_per_px**2 / depth_um * UM3_PER_UL
    all_classes = sum(c["count"] for c in live["concentration"].values())
    volume = next(iter(live["concentration"].values()))["volume_ul"]
    low_c, high_c = (v / volume for v in poisson_interval(all_classes))
    assert low_c <= true_per_ul <= high_c, (all_classes / volume, true_per_ul)
