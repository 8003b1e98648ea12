"""Training options: typos rejected, automatic input size and epoch count chosen from the data."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from trainer.config import TARGET_STEPS, TrainConfig, auto_scale, input_hw, resolve_epochs


def test_typos_and_bad_values_are_rejected() -> None:
    with pytest.raises(ValidationError):
        TrainConfig(epoch=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="multiple of 32"):
        TrainConfig(crop=100)


@pytest.mark.parametrize(
    ("small_px", "scale"),
    [
        (6.0, 2.0),  # specks: doubled, no more
        (8.0, 1.5),  # brought up to 12 px
        (12.0, 1.0),  # already in the 12-24 px band: native resolution
        (20.0, 1.0),
        (48.0, 0.5),  # large cells only: halved to save compute
        (200.0, 0.5),  # never below half
    ],
)
def test_auto_scale_brings_small_objects_to_12_to_24_px(small_px: float, scale: float) -> None:
    sizes = np.full(50, small_px)
    assert auto_scale(sizes) == pytest.approx(scale)


def test_auto_scale_reads_the_small_end_not_the_median() -> None:
    sizes = np.concatenate([np.full(20, 6.0), np.full(80, 40.0)])  # a fifth are specks
    assert auto_scale(sizes) == pytest.approx(2.0)
    assert auto_scale(np.zeros(0)) == 1.0  # nothing annotated: native size


@pytest.mark.parametrize(
    ("input_size", "image_hw", "small_px", "expected"),
    [
        (0, (480, 640), 8.0, (704, 960)),  # 1.5x, snapped to multiples of 32
        (0, (480, 640), 16.0, (480, 640)),
        (0, (960, 1280), 6.0, (960, 1280)),  # the longest side never exceeds 1280
        (0, (480, 640), 60.0, (256, 320)),
        (320, (480, 640), 6.0, (256, 320)),  # an explicit size wins over the data
    ],
)
def test_input_hw(input_size: int, image_hw: tuple[int, int], small_px: float, expected: tuple[int, int]) -> None:
    config = TrainConfig(input_size=input_size)
    assert input_hw(config, image_hw, np.full(10, small_px)) == expected


def test_default_epochs_follow_the_step_target_and_explicit_epochs_stay() -> None:
    assert resolve_epochs(TrainConfig(), steps_per_epoch=100).epochs == round(TARGET_STEPS / 100)
    assert resolve_epochs(TrainConfig(), steps_per_epoch=100000).epochs == 3
    assert resolve_epochs(TrainConfig(epochs=7), steps_per_epoch=100).epochs == 7


def test_a_gpu_trainer_plans_more_steps_within_bounds() -> None:
    from trainer.config import TARGET_STEPS_GPU

    assert resolve_epochs(TrainConfig(), steps_per_epoch=100, gpu=True).epochs == round(TARGET_STEPS_GPU / 100)
    assert resolve_epochs(TrainConfig(), steps_per_epoch=100, gpu=True).epochs > resolve_epochs(TrainConfig(), 100).epochs
    assert resolve_epochs(TrainConfig(), steps_per_epoch=1, gpu=True).epochs == 1000
    assert resolve_epochs(TrainConfig(epochs=7), steps_per_epoch=100, gpu=True).epochs == 7  # asked for: kept
