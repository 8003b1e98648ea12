"""The training plan is read from every image: one scale, the cheapest tile, detections per tile
that follow the densest image, epochs drawn by frame area, and warnings a lab can act on."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.config import TrainConfig
from trainer.dataset import Sample
from trainer.plan import BoxStats, auto_max_detections, describe, make_plan, may_stop_early
from trainer.tiling import plan_frame, tile_count


def _sample(hw: tuple[int, int], n: int, size: float, seed: int = 0) -> Sample:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, [hw[1] - size, hw[0] - size], (n, 2))
    boxes = np.concatenate([xy, xy + size], axis=1).astype(np.float32)
    return Sample(f"{hw}-{seed}.png", np.zeros((*hw, 3), np.uint8), boxes, np.zeros(n, np.int32))


@pytest.mark.parametrize(("most", "explicit", "expected"), [(5, 0, 100), (80, 0, 120), (375, 0, 563), (900, 0, 1000), (375, 50, 50)])
def test_max_detections_follows_the_densest_training_image(most: int, explicit: int, expected: int) -> None:
    samples = [_sample((512, 512), 3, 10), _sample((512, 512), most, 10, seed=1)]
    assert auto_max_detections(BoxStats.of(samples), TrainConfig(max_detections=explicit)) == expected


def test_mixed_frame_sizes_get_one_scale_and_the_big_frames_tiles() -> None:
    small = [_sample((256, 256), 30, 9, seed=i) for i in range(20)]
    big = [_sample((1040, 1388), 300, 9, seed=100 + i) for i in range(2)]
    plan = make_plan(small + big[:1], big[1:], ["nucleus"], TrainConfig())
    policy = plan.policy
    assert policy.scale == pytest.approx(12 / 9)  # 9 px nuclei brought to 12 px, in every frame
    # the tile costing the fewest network pixels over the dataset: the 256x256 majority (341 px at
    # that scale) in one pass, the big frames in few
    assert policy.input_hw in ((352, 352), (384, 384))
    assert tile_count((256, 256), policy.scale, policy) == 1
    big_layout = plan_frame((1040, 1388), policy)
    assert big_layout.scale == policy.scale and len(big_layout.origins) > 1  # tiled, not stretched or shrunk
    assert policy.max_tiles >= len(big_layout.origins)
    assert plan.max_detections == 450  # 1.5 x the 300 nuclei of the densest training frame
    assert plan.frame_sizes == {"256x256": 20, "1388x1040": 2}
    # an epoch draws each frame as often as crops cover it: the big ones many times
    assert plan.steps_per_epoch > (20 + 1) / 8
    text = describe(plan)
    assert "scale 1.333x for every frame" in text and f"{policy.input_hw[1]}x{policy.input_hw[0]}" in text
    assert "up to 450 detections" in text
    assert f"1388x1040 as {len(big_layout.origins)} tiles" in text and "the rest in one pass" in text


def test_a_uniform_dataset_keeps_its_whole_frame_as_one_input() -> None:
    samples = [_sample((480, 640), 12, 100, seed=i) for i in range(40)]
    plan = make_plan(samples[:34], samples[34:], ["rbc"], TrainConfig())
    assert plan.policy.scale == 0.5 and plan.policy.input_hw == (256, 320) and plan.policy.max_tiles == 16
    assert plan.max_detections == 100 and not plan.warnings
    assert "every frame in one pass" in describe(plan)
    on_gpu = make_plan(samples[:34], samples[34:], ["rbc"], TrainConfig(), gpu=True)
    assert on_gpu.epochs > plan.epochs and on_gpu.gpu and "planned for the GPU" in describe(on_gpu)
    assert "CPU cores" in describe(plan)


def test_warnings_name_what_the_recipe_cannot_handle() -> None:
    tiny = [_sample((256, 256), 10, 3, seed=i) for i in range(6)]  # 3 px specks: below 8 px even at 2x
    large = [_sample((1024, 1024), 10, 60, seed=10 + i) for i in range(2)]  # another magnification
    plan = make_plan(tiny[:5] + large[:1], tiny[5:] + large[1:], ["a", "b"], TrainConfig())
    text = " | ".join(plan.warnings)
    assert "differ in size between frame sizes" in text
    assert "only 6 training images" in text
    assert "few training objects of b (0)" in text
    assert "small objects will be ~6 px" in text
    assert "warning:" in describe(plan)


def test_a_tiny_validation_split_turns_early_stopping_off_and_says_so() -> None:
    samples = [_sample((480, 640), 12, 100, seed=i) for i in range(40)]
    few = make_plan(samples[:37], samples[37:], ["rbc"], TrainConfig())  # 3 validation frames
    assert not may_stop_early(3) and may_stop_early(5)
    assert any("only 3 validation images" in w and "no early stop" in w for w in few.warnings)
    enough = make_plan(samples[:34], samples[34:], ["rbc"], TrainConfig())
    assert not any("validation images" in w for w in enough.warnings)


def _calibrated(um: float | None) -> Sample:
    acquisition = {"um_per_pixel": um} if um else None
    return Sample("f.png", np.zeros((8, 8, 3), np.uint8), np.zeros((0, 4), np.float32), np.zeros(0, np.int32), acquisition=acquisition)


@pytest.mark.parametrize(("ums", "reference"), [
    ([0.65, 0.65, 0.176, 0.176], 0.176),  # a 50/50 mix: one objective's own pixels (the finer), not their midpoint
    ([0.65, 0.65, 0.65, 0.176], 0.65),  # the most frames train at their own pixels
    ([None, 0.5, None], 0.5),
    ([None, None], None),
])
def test_the_reference_pixel_size_is_one_the_frames_have(ums: list[float | None], reference: float | None) -> None:
    from trainer.plan import reference_um_per_pixel

    assert reference_um_per_pixel([_calibrated(u) for u in ums]) == reference
