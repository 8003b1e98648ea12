"""The field tracker on literal scenes and on seeded synthetic sequences with known identities."""

from __future__ import annotations

import numpy as np
import pytest

from device.sources.synthetic import SyntheticConfig
from device.tracking.settings import TrackingSettings
from device.tracking.simulate import sequence, true_unique
from device.tracking.tracker import FieldTracker
from tests.conftest import dets


def _box(cx: float, cy: float, r: float = 8) -> list[float]:
    return [cx - r, cy - r, cx + r, cy + r]


def test_ids_stay_with_objects_that_move_past_each_other() -> None:
    tracker = FieldTracker(TrackingSettings(min_frames=1))
    seen = []
    for i in range(12):  # two cells swap sides at 5 px/frame, 30 px apart vertically
        step = tracker.update(dets([_box(10 + 5 * i, 50), _box(70 - 5 * i, 80)]), i / 10)
        seen.append(step.ids.tolist())
    assert all(ids == seen[0] for ids in seen) and len(set(seen[0])) == 2


def test_classes_are_tracked_apart() -> None:
    """A crystal appearing where a cell was is another object, not the cell's track."""
    tracker = FieldTracker(TrackingSettings(min_frames=1))
    first = tracker.update(dets([_box(50, 50)], classes=[0]), 0.0).ids
    second = tracker.update(dets([_box(51, 50)], classes=[1]), 0.1).ids
    assert first[0] != second[0]


def test_a_track_coasts_over_missed_frames_then_ends() -> None:
    tracker = FieldTracker(TrackingSettings(min_frames=2, max_missed=2))
    ids = [tracker.update(dets([_box(20 + 2 * i, 20)]), i).ids[0] for i in range(4)]
    for i in range(4, 6):  # missed twice: still open
        assert not len(tracker.update(dets([]), i).ended)
    back = tracker.update(dets([_box(32, 20)]), 6)
    assert back.ids[0] == ids[0] and back.reappeared == 1  # found again where it would be: a flicker
    for i in range(7, 9):
        tracker.update(dets([]), i)
    ended = tracker.update(dets([]), 9).ended
    assert len(ended) == 1 and ended[0]["tid"] == ids[0] and ended[0]["hits"] == 5


def test_short_tracks_are_not_confirmed() -> None:
    tracker = FieldTracker(TrackingSettings(min_frames=3, max_missed=0))
    confirmed = [len(tracker.update(dets([_box(30, 30)]), i).confirmed) for i in range(2)]
    assert confirmed == [0, 0]
    assert not len(tracker.update(dets([]), 2).ended)  # a flicker of two frames leaves no track
    assert [len(tracker.update(dets([_box(60, 60)]), 3 + i).confirmed) for i in range(3)] == [0, 0, 1]


def test_close_ends_every_open_track() -> None:
    tracker = FieldTracker(TrackingSettings(min_frames=2))
    for i in range(3):
        tracker.update(dets([_box(20, 20), _box(80, 80, 5)], classes=[0, 2]), i)
    ended = tracker.close()
    assert sorted(ended["cls"].tolist()) == [0, 2] and len(tracker.rows) == 0


@pytest.mark.parametrize(("drift", "density"), [(0.4, 60.0), (2.0, 60.0), (1.0, 120.0)])
def test_unique_cell_count_within_5_percent_with_stage_drift(drift: float, density: float) -> None:
    """Demo density (60 objects/Mpx) on the full 1280x960 field, the stage drifting; the truth
    counts every cell labelled in >= min_frames frames of the sequence."""
    settings = TrackingSettings()
    tracker = FieldTracker(settings)
    unique = np.zeros(3, int)
    truth = []
    for frame in sequence(SyntheticConfig(seed=11, density=density, drift=drift), 200):
        truth.append((frame.truth.class_ids, frame.truth_ids))
        np.add.at(unique, tracker.update(frame.detections, frame.t).confirmed, 1)
    expected = true_unique(truth, 0, settings.min_frames)
    assert expected > 30
    assert abs(unique[0] - expected) / expected < 0.05, (unique[0], expected)
    assert np.hypot(*tracker.drift) == pytest.approx(drift, abs=0.25)
