import numpy as np
import pytest

from device.metrics.points import Point
from device.metrics.stats import FpsMonitor, FrameMeasure, class_fields, frame_points, quantile
from tests.conftest import dets


def test_fps_monitor_over_a_window() -> None:
    fps = FpsMonitor(window=5)
    assert fps.fps == 0.0
    for t in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5):
        fps.tick(t)
    assert fps.fps == pytest.approx(10.0)


@pytest.mark.parametrize("values", [[3.0], [1.0, 2.0], [5.0, 1.0, 4.0, 2.0, 3.0], list(np.linspace(0, 17, 23))])
def test_quantile_matches_numpy(values: list[float]) -> None:
    ordered = sorted(values)
    for q in (0.5, 0.9):
        assert quantile(ordered, q) == pytest.approx(np.percentile(values, q * 100))


def test_class_fields_in_pixels_and_micrometres() -> None:
    d = dets([[0, 0, 10, 20], [0, 0, 30, 40], [0, 0, 5, 5]], [0.9, 0.5, 0.7], [0, 0, 1])
    cell = class_fields(d, 0, um_per_pixel=0.5)
    assert cell["count"] == 2
    assert cell["width_px_mean"] == 20 and cell["height_px_median"] == 30
    assert cell["area_px_mean"] == (200 + 1200) / 2
    assert cell["area_px_p90"] == pytest.approx(np.percentile([200, 1200], 90))
    assert cell["width_um_mean"] == 10 and cell["area_um2_mean"] == pytest.approx(700 * 0.25)
    assert cell["score_mean"] == pytest.approx(0.7)
    assert class_fields(d, 2, None) == {"count": 0}
    assert "width_um_mean" not in class_fields(d, 1, None)


def test_frame_points_follow_the_schema() -> None:
    d = dets([[0, 0, 4, 4], [1, 1, 3, 3]], [0.8, 0.4], [0, 2])
    tags = {"device": "scope-1", "project": "p", "model": "m", "model_version": "1"}
    points = frame_points(d, FrameMeasure(7, 1700000000.5, 29.9, 12.0, 30.0, 2), tags, ["cell", "crystal", "debris"], None)
    frame = points[0]
    assert frame.measurement == "frame" and frame.ts_us == 1700000000500000
    assert frame.fields["count"] == 2 and frame.fields["dropped_frames"] == 2
    assert frame.fields["score_min"] == pytest.approx(0.4)
    assert [(p.tags["class"], p.fields["count"]) for p in points[1:]] == [("cell", 1), ("crystal", 0), ("debris", 1)]
    empty = frame_points(dets([]), FrameMeasure(8, 1.0, 0, 0, 0, 0), tags, ["cell"], None)[0]
    assert "score_mean" not in empty.fields


def test_line_protocol_escaping_and_types() -> None:
    point = Point("device_event", {"device": "lab scope,1", "kind": "model_switched", "empty": ""},
                  {"message": 'say "hi" \\ bye', "n": 3, "x": 1.5, "ok": True, "bad": float("nan")}, 42)
    assert point.to_line() == ('device_event,device=lab\\ scope\\,1,kind=model_switched '
                               'message="say \\"hi\\" \\\\ bye",n=3i,x=1.5,ok=true 42')
