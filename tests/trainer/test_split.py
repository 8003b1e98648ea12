"""Validation you can believe: near-copies (one acquisition, the same field) stay on one side of the
split, and the plan says when validation is too small or too alike to trust."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from trainer.dataset import Sample
from trainer.plan import validation_warnings
from trainer.split import group_split

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def _field(seed: int) -> np.ndarray:
    """A distinct random field of cells (its own blob positions)."""
    rng = np.random.default_rng(seed)
    image = np.full((128, 128, 3), 60, np.uint8)
    for x, y in rng.integers(8, 120, (25, 2)):
        image[y - 4 : y + 4, x - 4 : x + 4] = 200
    return image


def _sample(name: str, image: np.ndarray, acquisition: dict[str, object] | None = None) -> Sample:
    return Sample(name, image, np.asarray([[10, 10, 20, 20]], np.float32), np.zeros(1, np.int32), acquisition=acquisition)


def test_consecutive_captures_of_one_acquisition_stay_on_one_side() -> None:
    samples = []
    for session in range(6):  # six acquisitions an hour apart, four captures 5 s apart each
        for k in range(4):
            at = T0 + timedelta(hours=session, seconds=5 * k)
            samples.append(_sample(f"s{session}_{k}.png", _field(100 * session + k),
                                   {"device": "scope-1", "source": "/dev/video0", "captured_at": at.isoformat(), "frame_index": 10 * k}))
    for seed in range(5):
        split = group_split(samples, 0.25, seed)
        assert split.groups == 6 and split.val
        val_sessions = {s.file_name.split("_")[0] for s in split.val}
        train_sessions = {s.file_name.split("_")[0] for s in split.train}
        assert not val_sessions & train_sessions


def test_near_copies_without_metadata_stay_together() -> None:
    rng = np.random.default_rng(0)
    samples = []
    for i in range(10):
        image = _field(i)
        again = np.clip(image.astype(int) + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)  # the field captured twice
        samples += [_sample(f"f{i}a.png", image), _sample(f"f{i}b.png", again)]
    split = group_split(samples, 0.2, 3)
    assert split.groups == 10
    val = {s.file_name[:-5] for s in split.val}
    assert val and not val & {s.file_name[:-5] for s in split.train}
    assert split.closest is not None and split.closest < 0.85


def test_one_acquisition_only_is_said_to_flatter() -> None:
    base = _field(7)
    samples = [_sample(f"t{k:02d}.png", base, {"device": "d", "source": "s", "captured_at": (T0 + timedelta(seconds=k)).isoformat()})
               for k in range(20)]
    split = group_split(samples, 0.2, 0)
    assert split.groups == 1 and [s.file_name for s in split.val] == ["t16.png", "t17.png", "t18.png", "t19.png"]
    warnings = " ".join(validation_warnings(split))
    assert "not independent" in warnings and "4 images" in warnings


def test_a_small_validation_from_few_acquisitions_is_flagged() -> None:
    samples = [_sample(f"x{i}.png", _field(i)) for i in range(12)]
    split = group_split(samples, 0.25, 1)
    assert split.groups == 12 and split.val_groups == len(split.val) == 3
    warnings = validation_warnings(split)
    assert any("held-out package" in w for w in warnings)
    assert not any("independent acquisitions" in w for w in warnings)  # 3 groups: enough
