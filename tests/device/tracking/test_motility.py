"""Speeds and distributions from tracks, against swimmers whose speed the simulator sets."""

from __future__ import annotations

import numpy as np
import pytest

from device.sources.synthetic import SyntheticConfig
from device.tracking.motility import MotilityStats, TrackRecord, records
from device.tracking.settings import TrackingSettings
from device.tracking.simulate import sequence
from device.tracking.tracker import FieldTracker
from tests.conftest import dets

FPS = 15.0


def _finished(config: SyntheticConfig, frames: int, settings: TrackingSettings) -> list[TrackRecord]:
    tracker = FieldTracker(settings)
    rows = [tracker.update(f.detections, f.t).ended for f in sequence(config, frames, FPS)]
    return records(np.concatenate([*rows, tracker.close()]))


@pytest.mark.parametrize(("speed", "drift"), [(3.0, 0.4), (6.0, 1.5)])
def test_median_swimmer_speed_within_10_percent_on_a_drifting_stage(speed: float, drift: float) -> None:
    tracks = _finished(SyntheticConfig(seed=5, density=60, motion="swim", swim_speed=speed, drift=drift),
                       150, TrackingSettings(min_frames=10))
    cells = [r.speed_px_s for r in tracks if r.class_id == 0]
    assert len(cells) > 20
    assert np.median(cells) == pytest.approx(speed * FPS, rel=0.10)
    still = [r.speed_px_s for r in tracks if r.class_id != 0]  # crystals and debris only jitter
    assert np.median(still) < 0.25 * speed * FPS, "drift was not subtracted from the still objects"


def test_distribution_median_iqr_and_motile_share() -> None:
    stats = MotilityStats(2, motile_speed=5.0)  # at 0.5 µm/px: 5 µm/s = 10 px/s
    for i, speed_px_s in enumerate([2.0, 4.0, 20.0, 30.0, 40.0]):
        stats.add(TrackRecord(i, 0, 10, 0.0, 1.0, speed_px_s, speed_px_s, 1.0, 0.0, (0, 0), (speed_px_s, 0)))
    summary = stats.summary(0, 0.5)
    assert summary["tracks"] == 5 and summary["motile_share"] == pytest.approx(0.6)
    assert summary["speed_median_px_s"] == 20.0 and summary["speed_median_um_s"] == 10.0
    assert summary["speed_iqr_px_s"] == pytest.approx(30.0 - 4.0)
    assert stats.summary(1, 0.5) == {"tracks": 0}


def test_straight_swimmer_has_straightness_near_one_and_still_object_near_zero() -> None:
    tracks = _finished(SyntheticConfig(seed=8, density=40, motion="swim", swim_speed=4.0, swim_turn=0.0, drift=0.0),
                       80, TrackingSettings(min_frames=20))
    swimmers = [r.straightness for r in tracks if r.class_id == 0]
    still = [r.straightness for r in tracks if r.class_id == 2]
    assert np.median(swimmers) > 0.95 and np.median(still) < 0.5


def test_an_object_leaving_the_frame_keeps_its_speed() -> None:
    """A box cut by the frame's edge shrinks and its centre slows to half speed: those positions
    are kept out of the path, so the speed is the object's own (5 px/frame at 10 FPS)."""
    tracker = FieldTracker(TrackingSettings(min_frames=3, max_missed=0))
    ended = []
    for i in range(30):  # a 20 px object at 5 px/frame, wholly in view, then sliding out at x = 200
        x1 = 120 + 5 * i
        if x1 >= 200:
            break
        ended.append(tracker.update(dets([[x1, 40, min(x1 + 20, 200), 60]]), i / 10, (100, 200)).ended)
    record = records(np.concatenate([*ended, tracker.close()]))[0]
    assert record.speed_px_s == pytest.approx(50.0, rel=0.01) and record.frames == 16


def test_a_track_never_wholly_in_view_has_no_speed() -> None:
    tracker = FieldTracker(TrackingSettings(min_frames=2))
    for i in range(4):
        tracker.update(dets([[0, 40, 10, 50]]), i / 10, (100, 200))  # always on the left edge
    (record,) = records(tracker.close())
    assert not record.measured and record.speed_px_s == 0.0
