"""The live stream's overlay with several models: each model's own layer (boxes, style, legend and
count), only those whose overlay is on, and a model that did not analyse the frame says why."""

from __future__ import annotations

import numpy as np
import pytest

from device.analysis import Analysis
from device.board import LiveBoard, overlay_state
from device.models.bundle import ModelCard
from device.render import legend_lines
from device.web_protocol import LatestFrame
from tests.conftest import dets


def _card(name: str, classes: list[str]) -> ModelCard:
    return ModelCard.model_validate({"name": name, "version": "1", "classes": classes, "input": {"width": 32, "height": 32},
                                    "created": "2026-12-01T00:00:00Z"})


CELLS = Analysis("main", "local", dets([[0, 0, 5, 5], [10, 10, 20, 20]], classes=[0, 1]), _card("cells", ["cell", "crystal"]))
DEBRIS = Analysis("debris", "remote:http://h:8000", dets([[1, 1, 4, 4]], classes=[0]), _card("debris", ["speck"]))
SKIPPED = Analysis("debris", "skipped", None, _card("debris", ["speck"]))
BLURRED = Analysis("main", "out_of_focus", None, _card("cells", ["cell", "crystal"]))


def _frame(*analyses: Analysis) -> LatestFrame:
    return LatestFrame(np.zeros((64, 64, 3), np.uint8), analyses[0].detections, 0.0, 7, ("cell", "crystal"), {}, analyses)


@pytest.mark.parametrize(("analyses", "shown", "layers"), [
    ((CELLS,), None, [("cells", 2, 0)]),
    ((CELLS, DEBRIS), None, [("main (cells)", 2, 0), ("debris (debris)", 1, 1)]),
    ((CELLS, DEBRIS), {"main"}, [("cells", 2, 0)]),
    ((CELLS, DEBRIS), {"debris"}, [("debris", 1, 1)]),  # keeps its slot's style when shown alone
    ((CELLS, SKIPPED), None, [("main (cells)", 2, 0), ("debris (debris)", None, 1)]),
    ((CELLS, DEBRIS), set(), []),
])
def test_each_model_on_the_feed_is_its_own_layer(analyses: tuple[Analysis, ...], shown: set[str] | None,
                                                 layers: list[tuple[str, int | None, int]]) -> None:
    state = overlay_state(_frame(*analyses), shown, {}, 4.0)
    assert [(la.name, None if la.detections is None else len(la.detections), la.style) for la in state.layers] == layers


def test_two_models_are_counted_apart_never_added_up() -> None:
    texts = [line.text for line in legend_lines(overlay_state(_frame(CELLS, DEBRIS), None, {}, 4.0))]
    assert texts == [" 4.0 FPS", "main (cells): 2 objects", "  cell: 1", "  crystal: 1", "debris (debris): 1 objects", "  speck: 1"]
    assert not any("3 objects" in t for t in texts)


def test_a_model_that_did_not_look_says_why_and_gives_no_count() -> None:
    texts = [line.text for line in legend_lines(overlay_state(_frame(BLURRED, SKIPPED), None, {}, 4.0))]
    assert texts == [" 4.0 FPS", "main (cells): NOT ANALYSED (out of focus)", "debris (debris): NOT ANALYSED (skipped, runs every k-th frame)"]


def test_the_live_statistics_give_every_models_count_and_route() -> None:
    board = LiveBoard()
    board.post(_frame(CELLS, DEBRIS))
    board.post(_frame(BLURRED, SKIPPED))  # not analysed now: the route is the one the model last ran on
    models = board.live_stats()["feed"]
    assert models["main"] == {**models["main"], "count": None, "counts": None, "route": "local", "excluded": "not analysed: out of focus"}
    assert models["debris"]["route"] == "remote:http://h:8000" and models["debris"]["inference"] == "skipped"
    board.post(_frame(CELLS, DEBRIS))
    models = board.live_stats()["feed"]
    assert (models["main"]["count"], models["main"]["counts"], models["debris"]["count"]) == (2, {"cell": 1, "crystal": 1}, 1)
