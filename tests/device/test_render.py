import cv2
import numpy as np

from device.render import annotate, class_colour, encode_jpeg
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
