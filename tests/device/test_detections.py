import numpy as np
import pytest

from device.detections import Detections
from tests.conftest import dets


def test_empty_has_right_shapes() -> None:
    d = Detections.empty()
    assert len(d) == 0 and d.xyxy.shape == (0, 4) and d.scores.shape == (0,) and d.class_ids.shape == (0,)


@pytest.mark.parametrize(
    ("boxes", "scores", "classes", "message"),
    [
        ([[0, 0, 1, 1]], [0.5, 0.6], [0], "one score and one class id"),
        ([[5, 5, 1, 1]], [0.5], [0], "x2 >= x1"),
        ([[0, 0, np.nan, 1]], [0.5], [0], "NaN"),
        ([[0, 0, 1, 1]], [0.5], [-1], ">= 0"),
    ],
)
def test_invalid_input_is_rejected_with_reason(boxes, scores, classes, message) -> None:
    with pytest.raises(ValueError, match=message):
        dets(boxes, scores, classes)


def test_mask_indexing_and_geometry() -> None:
    d = dets([[0, 0, 10, 20], [5, 5, 7, 9], [1, 1, 2, 2]], [0.9, 0.2, 0.5], [0, 1, 2])
    kept = d.with_min_score(0.4)
    assert kept.class_ids.tolist() == [0, 2]
    assert d.width.tolist() == [10, 2, 1] and d.height.tolist() == [20, 4, 1]
    assert d.area.tolist() == [200, 8, 1]
    assert d[1].xyxy.tolist() == [[5, 5, 7, 9]]


def test_xywh_round_trip_and_scaling() -> None:
    d = Detections.from_xywh(np.array([[10, 20, 30, 40]], np.float32))
    assert d.xyxy.tolist() == [[10, 20, 40, 60]]
    assert d.to_xywh().tolist() == [[10, 20, 30, 40]]
    assert d.scaled(2, 0.5).xyxy.tolist() == [[20, 10, 80, 30]]
    assert d.clipped(30, 50).xyxy.tolist() == [[10, 20, 30, 50]]


def test_records_name_classes() -> None:
    rec = dets([[0, 0, 1, 1]], [0.5], [1]).to_records(["cell", "crystal"])
    assert rec == [{"box": [0.0, 0.0, 1.0, 1.0], "score": 0.5, "class_id": 1, "class_name": "crystal"}]
