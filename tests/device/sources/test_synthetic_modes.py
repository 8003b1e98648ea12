"""The synthetic modalities: seeded, labelled as drawn, and looking like the samples they imitate."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from device.sources.base import SourceError
from device.sources.registry import open_source
from device.sources.synthetic_base import MIN_VISIBLE
from device.sources.synthetic_modes import create_scope, mode_classes, mode_config

MODES = ("blood", "fluorescence", "phase")


def _scope(mode: str, seed: int = 1, **options: object):  # type: ignore[no-untyped-def]
    return create_scope(mode_config(mode, {"seed": seed, **options}))


@pytest.mark.parametrize("mode", MODES)
def test_same_seed_same_frames_other_seed_other_frames(mode: str) -> None:
    a, b, c = _scope(mode), _scope(mode), _scope(mode, seed=2)
    for _ in range(2):
        fa, fb, fc = a.read(), b.read(), c.read()
        assert np.array_equal(fa.image, fb.image) and np.array_equal(fa.truth.xyxy, fb.truth.xyxy)
        assert not np.array_equal(fa.image, fc.image)
        a.new_scene(), b.new_scene(), c.new_scene()


def _ink(mode: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the noise-free scene differs visibly from its empty field, and the labels."""
    scene = _scope(mode, seed).scene
    ink = np.abs(scene.image - scene.background).max(axis=2) > 6.0
    return ink, scene.boxes, scene.class_ids


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", [3, 4])
def test_every_label_holds_an_object_and_every_object_inside_the_frame_is_labelled(mode: str, seed: int) -> None:
    ink, boxes, _ = _ink(mode, seed)
    height, width = ink.shape
    labelled = np.zeros_like(ink)
    for x1, y1, x2, y2 in boxes.astype(int):
        assert ink[y1:y2, x1:x2].mean() >= 0.3, "a label where little is drawn"
        labelled[y1:y2, x1:x2] = True
    n, parts, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        on_edge = x == 0 or y == 0 or x + w == width or y + h == height
        if area >= 20 and not on_edge:  # objects cut by the edge may be under the 40 % rule
            assert labelled[parts == i].any(), f"unlabelled object at {x},{y} {w}x{h}"


@pytest.mark.parametrize("mode", MODES)
def test_objects_cut_by_the_edge_are_labelled_when_mostly_inside(mode: str) -> None:
    boxes = np.concatenate([_scope(mode, seed).scene.boxes for seed in range(6)])
    at_edge = (boxes[:, 0] == 0) | (boxes[:, 1] == 0) | (boxes[:, 2] == 640) | (boxes[:, 3] == 480)
    assert at_edge.any() and MIN_VISIBLE == 0.4


def test_blood_smear_is_a_dense_colour_scene_of_three_classes() -> None:
    counts = np.zeros(3, int)
    for seed in range(8):
        frame = _scope("blood", seed).read()
        counts += np.bincount(frame.truth.class_ids, minlength=3)
    assert mode_classes("blood") == ("red_cell", "white_cell", "platelet")
    assert counts[0] / 8 >= 10 and counts[1] >= 4 and counts[2] >= 4  # ~16 red cells per field, a few others
    b, g, r = frame.image.reshape(-1, 3).mean(axis=0)
    assert r > g + 15, "stained red cells make the smear pink-red, not grey"


def test_fluorescence_is_hundreds_of_bright_nuclei_on_dark() -> None:
    frame = _scope("fluorescence", 5).read()
    assert len(frame.truth) >= 150 and mode_classes("fluorescence") == ("nucleus",)
    assert np.median(frame.image) < 40 and frame.image.max() > 120
    sizes = np.sqrt(frame.truth.width * frame.truth.height)
    assert sizes.max() > 2 * sizes.min()


def test_phase_contrast_has_halos_around_cells() -> None:
    scene = _scope("phase", 2).scene
    x1, y1, x2, y2 = scene.boxes[0].astype(int)
    ring = scene.image[max(y1 - 6, 0) : y2 + 6, max(x1 - 6, 0) : x2 + 6, 0] - scene.background[max(y1 - 6, 0) : y2 + 6, max(x1 - 6, 0) : x2 + 6, 0]
    assert ring.max() > 20  # a bright halo beside the (dark or bright) body


def test_modes_are_chosen_by_the_source_uri() -> None:
    source = open_source("synthetic://?mode=fluorescence&seed=2&width=320&height=240&density=1500")
    frame = source.read()
    assert isinstance(frame, np.ndarray) and frame.shape == (240, 320, 3) and "fluorescence" in source.name
    with pytest.raises(SourceError, match="choose one of brightfield, blood"):
        open_source("synthetic://?mode=confocal")
    with pytest.raises(SourceError, match="red_cells"):
        open_source("synthetic://?mode=blood&red_cells=-1")


def test_synthetic_package_of_a_mode(tmp_path: Path) -> None:
    from device.datasets.package import load_package_boxes, write_synthetic_package

    manifest = write_synthetic_package(tmp_path / "blood.zip", count=3, seed=4, width=320, height=240, mode="blood", scale=0.5)
    assert manifest.classes == ["red_cell", "white_cell", "platelet"] and manifest.project == "synthetic-blood"
    boxes = load_package_boxes(tmp_path / "blood.zip")
    first = _scope("blood", 4, width=320, height=240, scale=0.5).read().truth
    assert np.allclose(boxes["synthetic_0004_00000.png"].xyxy, first.xyxy, atol=0.01)


def test_a_package_mixing_two_magnifications_with_16_bit_camera_frames(tmp_path: Path) -> None:
    """Two objectives in one package (objects ~3.7x apart, µm per pixel in the manifest), frames as a
    12-bit camera's counts with its dark offset, bright nuclei saturated."""
    from device.datasets.package import write_synthetic_package
    from trainer.dataset import load_dataset_package

    path = tmp_path / "mixed.zip"
    write_synthetic_package(path, 8, seed=3, width=256, height=256, mode="fluorescence", zooms="1,3.7", bit_depth=12,
                            offset=400, saturate_at=80)
    samples = load_dataset_package(path).samples
    ums = sorted({round(s.um_per_pixel or 0, 4) for s in samples})
    assert ums == [round(0.5 / 3.7, 4), 0.5]
    for s in samples:
        assert s.raw is not None and s.raw.dtype == np.uint16
        assert np.percentile(s.raw, 0.1) >= 300 and int(np.percentile(s.raw, 1)) < 1500  # the dark offset under a dim background
    assert sum(int(s.raw.max()) == 4095 for s in samples if s.raw is not None) >= len(samples) // 2  # saturated nuclei
    size = {um: np.median([np.sqrt(np.prod(b[2:] - b[:2])) for s in samples if round(s.um_per_pixel or 0, 4) == um for b in s.boxes])
            for um in ums}
    assert 2.5 < size[ums[0]] / size[ums[1]] < 5
