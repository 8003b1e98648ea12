"""A hive reply is believed only if the bundle's graph could have given it (literal arrays)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from device.inference.onnx_graph import TensorInfo
from device.inference.remote_outputs import HEADER_ROOM_BYTES, OutputContract
from device.models.bundle import ModelCard
from tests.device.bundles import card

CLASSES = ["cell", "crystal", "debris"]
K = 4


def scopehive(k: int | None = K) -> OutputContract:
    model = ModelCard.model_validate(card("peaks", CLASSES, 320, 240))
    return OutputContract((TensorInfo("boxes", 1, (None, k, 4)), TensorInfo("scores", 1, (None, k)),
                           TensorInfo("classes", 7, (None, k))), model)


def honest(k: int = K) -> dict[str, np.ndarray]:
    boxes = np.tile(np.asarray([10, 20, 30, 40], np.float32), (1, k, 1))
    return {"boxes": boxes, "scores": np.full((1, k), 0.9, np.float32), "classes": np.arange(k, dtype=np.int64)[None] % 3}


def bent(**changes: Any) -> dict[str, np.ndarray]:
    outputs = honest()
    for name, (index, value) in changes.items():
        outputs[name] = outputs[name].copy()
        outputs[name][index] = value
    return outputs


def test_an_honest_reply_is_believed() -> None:
    assert scopehive().problem(honest()) == ""
    edge = bent(boxes=((0, 0), [-8, -8, 328, 248]))  # past the edge, as a local model's box may be
    assert scopehive().problem(edge) == ""


@pytest.mark.parametrize(("outputs", "why"), [
    (bent(scores=((0, 1), np.nan)), "scores holds NaN"),
    (bent(boxes=((0, 2, 1), np.inf)), "boxes holds NaN or infinite"),
    (bent(classes=((0, 0), 3)), "class id 3"),
    (bent(classes=((0, 0), -1)), "class id -1"),
    (bent(boxes=((0, 3), [-1e30, -1e30, 1e30, 1e30])), "outside the 320x240 frame"),
    (bent(boxes=((0, 3), [700, 10, 720, 20])), "outside the 320x240 frame"),
    ({**honest(), "boxes": np.zeros((1, K, 3), np.float32)}, "boxes has shape [1, 4, 3]"),
    ({**honest(), "extra": np.zeros((1,), np.float32)}, "the bundle's graph has"),
    ({k: v for k, v in honest().items() if k != "classes"}, "the bundle's graph has"),
    (honest(K + 1), "has shape [1, 5, 4]"),
    ({**honest(), "scores": np.full((2, K), 0.5, np.float32)}, "scores has shape [2, 4]"),
    ({**honest(), "classes": np.asarray([["a"] * K])}, "not a number"),
], ids=["NaN score", "inf box", "class 3 of 3", "class -1", "1e30 box", "box a frame away", "3-column boxes",
        "extra output", "missing output", "more rows than the graph", "batch of two", "text classes"])
def test_a_reply_the_graph_could_not_give_is_malformed(outputs: dict[str, np.ndarray], why: str) -> None:
    assert why in scopehive().problem(outputs)


def test_a_row_no_threshold_keeps_is_not_judged() -> None:
    """Padding rows below score 0 may carry anything finite; rows a threshold could keep may not."""
    padded = bent(scores=((0, 3), -1.0), classes=((0, 3), 99))
    assert scopehive().problem(padded) == ""


def test_open_rows_are_bounded_by_max_detections() -> None:
    contract = scopehive(k=None)
    assert contract.problem(honest(300)) == ""
    assert "open dimensions at most 300" in contract.problem(honest(301))
    assert "open dimensions at most 300" in contract.problem(honest(1_000_000))


def test_the_reply_cap_is_the_graphs_outputs_at_the_widest_type() -> None:
    assert scopehive().max_reply_bytes == HEADER_ROOM_BYTES + 8 * (K * 4 + K + K)
    assert scopehive(k=None).max_reply_bytes == HEADER_ROOM_BYTES + 8 * (300 * 6)


def yolo() -> OutputContract:
    model = ModelCard.model_validate(card("lab-yolo", CLASSES, 64, 64, output={"format": "yolov8", "max_detections": 100}))
    return OutputContract((TensorInfo("output0", 1, (1, 7, 10)),), model)


def test_yolo_rows_are_checked_raw() -> None:
    head = np.zeros((1, 7, 10), np.float32)
    head[0, :4] = [[32], [32], [8], [8]]  # every anchor: a small box in the middle
    assert yolo().problem({"output0": head}) == ""
    wide = head.copy()
    wide[0, 2, 5] = -4  # negative width
    assert "negative width" in yolo().problem({"output0": wide})
    far = head.copy()
    far[0, 0, 1] = 1e30
    assert "outside the 64x64 frame" in yolo().problem({"output0": far})
