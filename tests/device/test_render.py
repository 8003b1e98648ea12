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
    assert (drawn[0:60, 0:150] == 0).mean() > 0.5  # the legend panel with counts and FPS


def test_jpeg_round_trip() -> None:
    image = np.zeros((40, 60, 3), np.uint8)
    decoded = cv2.imdecode(np.frombuffer(encode_jpeg(image, 70), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (40, 60, 3)
