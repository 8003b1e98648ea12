import numpy as np
import pytest
from pydantic import ValidationError

from device.sources.synthetic import CLASSES, SyntheticConfig, SyntheticMicroscope


def test_same_seed_same_frames_and_truth() -> None:
    a, b = SyntheticMicroscope(seed=3), SyntheticMicroscope(seed=3)
    for _ in range(3):
        fa, fb = a.read(), b.read()
        assert np.array_equal(fa.image, fb.image)
        assert np.array_equal(fa.truth.xyxy, fb.truth.xyxy)
    assert not np.array_equal(SyntheticMicroscope(seed=4).read().image, SyntheticMicroscope(seed=3).read().image)


def test_default_frame_is_1280x960_bgr_with_all_classes() -> None:
    scope = SyntheticMicroscope(seed=1, density=60)
    frame = scope.read()
    assert frame.image.shape == (960, 1280, 3) and frame.image.dtype == np.uint8
    assert set(frame.truth.class_ids.tolist()) == set(range(len(CLASSES)))
    sizes = np.maximum(frame.truth.width, frame.truth.height)
    assert sizes.min() >= 4 and sizes.max() <= 90
    assert 10 < frame.image.mean() < 245  # not blank, not saturated


def test_objects_are_visible_where_truth_says() -> None:
    scope = SyntheticMicroscope(seed=2, density=20, shot_noise=0, read_noise=0)
    frame = scope.read()
    gray = frame.image[:, :, 0].astype(np.float32)
    background = np.median(gray)
    for x1, y1, x2, y2 in frame.truth.xyxy.astype(int):
        patch = gray[y1:y2, x1:x2]
        assert np.abs(patch - background).max() > 15, "every true box holds a visible object"


def test_objects_move_between_frames_but_stay_counted() -> None:
    scope = SyntheticMicroscope(seed=5, drift=2.0)
    first, later = scope.read(), [scope.read() for _ in range(10)][-1]
    assert not np.array_equal(first.truth.xyxy[:3], later.truth.xyxy[:3])
    assert abs(len(first.truth) - len(later.truth)) <= max(3, len(first.truth) // 3)


def _pairwise_gaps(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Overlap widths and heights of every pair of boxes (negative: the gap between them)."""
    ix = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
    iy = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
    return ix, iy


def test_touching_objects_exist_when_clustered() -> None:
    frame = SyntheticMicroscope(seed=9, density=80, cluster_fraction=0.8).read()
    ix, iy = _pairwise_gaps(frame.truth.xyxy)
    overlapping = (ix > 0) & (iy > 0)
    np.fill_diagonal(overlapping, False)
    assert overlapping.any()


def test_objects_touch_but_never_lie_mostly_on_top_of_another() -> None:
    """A labelled object hidden under another would be a label no person could give."""
    for seed in range(5):
        b = SyntheticMicroscope(seed=seed, density=120, cluster_fraction=0.8, width=640, height=480).read().truth.xyxy
        ix, iy = _pairwise_gaps(b)
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        covered = ix.clip(0, None) * iy.clip(0, None) / np.minimum(area[:, None], area[None, :])
        np.fill_diagonal(covered, 0)
        assert len(b) > 20 and (covered > 0).any()
        assert covered.max() <= 0.6  # placement allows 0.5; pixel rounding and frame edges add a little


def test_faint_objects_are_drawn_but_not_labelled() -> None:
    """A crystal blurred into a smudge under 4 noise sigmas is in the image but not in the truth."""
    scene = {"seed": 4, "density": 150.0, "width": 640, "height": 480, "class_mix": (0.0, 1.0, 0.0)}
    noisy = SyntheticMicroscope(**scene).read()  # type: ignore[arg-type]
    quiet_scope = SyntheticMicroscope(**scene, shot_noise=0.0, read_noise=0.0)  # type: ignore[arg-type]
    quiet = quiet_scope.read()  # same objects (noise settings draw nothing), every one labelled
    labelled = {tuple(b) for b in noisy.truth.xyxy.tolist()}
    assert labelled < {tuple(b) for b in quiet.truth.xyxy.tolist()}
    sigma = float(np.hypot(0.35 * np.sqrt(175.0), 2.0))  # default shot and read noise at the background
    contrast = np.abs(quiet.image[:, :, 0].astype(np.float32) - quiet_scope._background)
    boxes = quiet.truth.xyxy
    ix, iy = _pairwise_gaps(boxes)
    alone = ((ix > -3) & (iy > -3)).sum(axis=1) == 1  # nothing else within 3 px of its box
    checked = {True: 0, False: 0}
    for box, isolated in zip(boxes.tolist(), alone.tolist(), strict=True):
        if not isolated:
            continue
        x1, y1, x2, y2 = (int(v) for v in box)
        strongest = contrast[y1:y2, x1:x2].max()
        is_labelled = tuple(box) in labelled
        checked[is_labelled] += 1
        assert strongest > 3.0 * sigma if is_labelled else strongest < 4.0 * sigma + 2.0  # + rounding, vignetting
    assert checked[True] and checked[False]


def test_config_rejects_typos_and_bad_values() -> None:
    with pytest.raises(ValidationError):
        SyntheticConfig(densty=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        SyntheticMicroscope(width=10)
