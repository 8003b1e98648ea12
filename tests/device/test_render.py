import cv2
import numpy as np
import pytest

from device.render import (
    ModelLayer,
    OverlayState,
    annotate,
    class_colour,
    draw_overlay,
    encode_jpeg,
    legend_lines,
)
from tests.conftest import dets


def test_boxes_are_drawn_in_their_class_colour_on_any_bit_depth() -> None:
    grey16 = np.full((200, 300), 30000, np.uint16)
    drawn = annotate(grey16, dets([[100, 120, 160, 180], [200, 130, 260, 190]], classes=[0, 2]), ["cell", "crystal", "debris"], 12.5)
    assert drawn.shape == (200, 300, 3) and drawn.dtype == np.uint8
    assert tuple(int(v) for v in drawn[150, 100]) == class_colour(0)  # left edge of the cell box
    assert tuple(int(v) for v in drawn[160, 260]) == class_colour(2)  # right edge of the debris box
    assert tuple(int(v) for v in drawn[150, 130]) == tuple(int(v) for v in drawn[199, 299])  # inside untouched
    background = int(drawn[199, 299, 0])
    legend = drawn[0:2, 0:4, 0]  # the corner above the first line of text: only the panel
    assert 0 < int(legend.max()) < background, "the counts panel is translucent: darker, but objects under it show"
    assert drawn.shape[0] * 0.5 > 60 and (drawn[60:, :] == drawn[199, 299]).all(axis=2).mean() > 0.9  # small: top-left only


def test_the_projects_colours_are_used_by_class_id() -> None:
    from device.colours import hex_to_bgr

    image = np.zeros((100, 100, 3), np.uint8)
    drawn = annotate(image, dets([[40, 40, 80, 80]], classes=[1]), ["cell", "crystal"], 5.0, ["#112233", "#abcdef"])
    assert tuple(int(v) for v in drawn[60, 40]) == hex_to_bgr("#abcdef") == (0xEF, 0xCD, 0xAB)


def test_the_stream_and_a_new_project_give_a_class_the_same_colour() -> None:
    import tempfile

    from device.colours import hex_to_bgr
    from device.panel.store import ProjectStore
    from device.storage.local import LocalStorage

    with tempfile.TemporaryDirectory() as tmp:
        project = ProjectStore(LocalStorage(tmp)).create_project("p", ["cell", "crystal", "debris"])
    assert [hex_to_bgr(c.color) for c in project.classes] == [class_colour(i) for i in range(3)]


def test_jpeg_round_trip() -> None:
    image = np.zeros((40, 60, 3), np.uint8)
    decoded = cv2.imdecode(np.frombuffer(encode_jpeg(image, 70), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (40, 60, 3)


def test_the_trainers_report_draws_classes_in_the_same_colours() -> None:
    from device.colours import hex_to_bgr
    from trainer.report_figure import class_colour as report_colour

    assert [hex_to_bgr(report_colour(i)) for i in range(12)] == [class_colour(i) for i in range(12)]


# ---- the overlay as a pure function of the frame state (issue 23, items 1 and 2) ----------------

CLASSES3 = ("cell", "crystal", "debris")


def _scene() -> np.ndarray:
    from device.sources.synthetic import SyntheticConfig, SyntheticMicroscope

    return SyntheticMicroscope(SyntheticConfig(seed=2, width=640, height=480)).read().image


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a != b).any(axis=2))


@pytest.mark.parametrize("reason", ["out_of_focus", "overexposed", "underexposed", "skipped", "no_model", "failed"])
def test_an_unanalysed_frame_says_why_and_shows_no_count(reason: str) -> None:
    raw = _scene()
    overlay = draw_overlay(raw, OverlayState(4.0, (ModelLayer("cells", reason, None, CLASSES3),)))
    texts = [line.text for line in overlay.lines]
    assert texts[1].startswith("cells: NOT ANALYSED (") and not any("objects" in t or ": 0" in t for t in texts), texts
    x1, y1, x2, y2 = overlay.panel
    changed = _changed(overlay.image, raw)
    assert changed[y1:y2, x1:x2].all() and not changed[y2:, :].any() and not changed[:, x2:].any()  # only the legend panel
    counted = draw_overlay(raw, OverlayState(4.0, (ModelLayer("cells", "local", dets([]), CLASSES3),))).image
    bx1, by1, bx2, by2 = overlay.line_boxes[1]
    assert _changed(overlay.image[by1:by2, bx1:bx2], counted[by1:by2, bx1:bx2]).mean() > 0.05  # another text where "0 objects" was
    fx1, fy1, fx2, fy2 = overlay.line_boxes[0]
    assert np.array_equal(overlay.image[fy1:fy2, fx1:fx2], counted[fy1:fy2, fx1:fx2])  # the FPS line is the same


def test_the_legend_background_fits_its_longest_line() -> None:
    raw = np.full((480, 640, 3), 200, np.uint8)
    state = OverlayState(12.0, (ModelLayer("cells-next-generation (synthetic-cells-2026.12)", "local", dets([]), CLASSES3),))
    overlay = draw_overlay(raw, state)
    x1, y1, x2, y2 = overlay.panel
    assert all(bx2 <= x2 and by2 <= y2 for _bx1, _by1, bx2, by2 in overlay.line_boxes)
    assert not _changed(overlay.image, raw)[:, x2:].any(), "no text runs past the panel"
    text_right = max(np.nonzero((overlay.image[:y2, :x2] > 150).any(axis=(0, 2)))[0])  # bright text pixels
    assert x2 - 12 < text_right < x2, "the panel ends just after the text"


def test_two_models_boxes_are_told_apart_by_style_and_counted_each() -> None:
    raw = np.full((300, 400, 3), 120, np.uint8)
    box = [[100, 150, 200, 230]]  # below the legend
    state = OverlayState(5.0, (ModelLayer("main (cells)", "local", dets(box, classes=[0]), CLASSES3, (), 0),
                               ModelLayer("next (cells)", "remote:http://hive:8000", dets(box + [[250, 200, 300, 260]], classes=[0, 1]),
                                          CLASSES3, (), 1)))
    image = draw_overlay(raw, state).image
    green = class_colour(0)
    solid = [tuple(int(v) for v in image[190, 100])]  # slot 0: solid on the box itself
    assert solid == [green] and all(tuple(int(v) for v in image[y, 100]) == green for y in range(160, 220))
    dashed = [tuple(int(v) for v in image[y, 98]) == green for y in range(160, 220)]  # slot 1: just outside, dashed
    assert 0.3 < sum(dashed) / len(dashed) < 0.9
    texts = [line.text for line in legend_lines(state)]
    assert "main (cells): 1 objects" in texts and "next (cells): 2 objects" in texts and not any("3 objects" in t for t in texts)
