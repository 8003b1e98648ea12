import numpy as np
import pytest

from device.inference.decode import (
    DecodeError,
    decode,
    decode_scopehive_v1,
    decode_yolov5,
    decode_yolov8,
    nms,
)
from device.models.bundle import OutputSpec


def test_scopehive_v1_thresholds_sorts_and_fixes_box_order() -> None:
    outputs = {
        "boxes": np.array([[[0, 0, 10, 10], [30, 30, 20, 20], [5, 5, 6, 6]]], np.float32),
        "scores": np.array([[0.4, 0.9, 0.1]], np.float32),
        "classes": np.array([[2, 1, 0]], np.int64),
    }
    got = decode_scopehive_v1(outputs, threshold=0.3, max_detections=10)
    assert got.xyxy.tolist() == [[20, 20, 30, 30], [0, 0, 10, 10]]
    assert got.scores.tolist() == pytest.approx([0.9, 0.4]) and got.class_ids.tolist() == [1, 2]


def test_scopehive_v1_by_order_when_names_differ_and_max_detections() -> None:
    outputs = {"a": np.array([[[0, 0, 1, 1], [0, 0, 2, 2]]], np.float32), "b": np.array([[0.5, 0.6]], np.float32),
               "c": np.array([[0.0, 1.0]], np.float32)}
    got = decode_scopehive_v1(outputs, 0.0, max_detections=1)
    assert got.xyxy.tolist() == [[0, 0, 2, 2]] and got.class_ids.tolist() == [1]


def test_scopehive_v1_wrong_output_count_is_explained() -> None:
    with pytest.raises(DecodeError, match="3 outputs"):
        decode_scopehive_v1({"x": np.zeros((1, 4, 4))}, 0.5, 10)


def test_nms_keeps_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
    assert nms(boxes, np.array([0.8, 0.9, 0.7], np.float32), 0.5).tolist() == [1, 2]
    assert nms(boxes, np.array([0.8, 0.9, 0.7], np.float32), 0.9).tolist() == [1, 0, 2]


def test_yolov8_decodes_cxcywh_and_suppresses_per_class() -> None:
    # anchors: two overlapping class-0 boxes, one class-1 box at the same place, one below threshold
    head = np.array([[
        [50, 51, 50, 10],   # cx
        [50, 50, 50, 10],   # cy
        [20, 20, 20, 4],    # w
        [10, 10, 10, 4],    # h
        [0.9, 0.8, 0.1, 0.1],  # class 0
        [0.0, 0.0, 0.7, 0.2],  # class 1
    ]], np.float32)
    got = decode_yolov8(head, 0.25, OutputSpec(format="yolov8", nms_iou=0.5))
    assert sorted(zip(got.class_ids.tolist(), got.xyxy.tolist(), strict=True)) == [
        (0, [40, 45, 60, 55]), (1, [40, 45, 60, 55])]
    assert got.scores.tolist() == pytest.approx([0.9, 0.7])


def test_yolov5_multiplies_objectness() -> None:
    rows = np.array([[[10, 10, 4, 4, 0.5, 0.9, 0.1], [30, 30, 4, 4, 0.2, 0.9, 0.0]]], np.float32)
    got = decode_yolov5(rows, 0.3, OutputSpec(format="yolov5"))
    assert got.xyxy.tolist() == [[8, 8, 12, 12]] and got.scores.tolist() == pytest.approx([0.45])


def test_yolo_shape_errors_are_explained() -> None:
    with pytest.raises(DecodeError, match="yolov8"):
        decode({"o": np.zeros((1, 3, 5))}, OutputSpec(format="yolov8"), 0.5)
    with pytest.raises(DecodeError, match="yolov5"):
        decode({"o": np.zeros((2, 5))}, OutputSpec(format="yolov5"), 0.5)
