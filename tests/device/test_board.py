"""The live stream's overlay with several models: each model's own boxes, colours and legend lines,
only those whose overlay is on, and nothing drawn for a model that did not analyse the frame."""

from __future__ import annotations

import pytest

from device.analysis import Analysis
from device.board import overlay_detections
from device.models.bundle import ModelCard
from tests.conftest import dets


def _card(name: str, classes: list[str]) -> ModelCard:
    return ModelCard.model_validate({"name": name, "version": "1", "classes": classes, "input": {"width": 32, "height": 32},
                                    "created": "2026-12-01T00:00:00Z"})


CELLS = Analysis("main", "local", dets([[0, 0, 5, 5], [10, 10, 20, 20]], classes=[0, 1]), _card("cells", ["cell", "crystal"]))
DEBRIS = Analysis("debris", "remote:http://h:8000", dets([[1, 1, 4, 4]], classes=[0]), _card("debris", ["speck"]))
SKIPPED = Analysis("debris", "skipped", None, _card("debris", ["speck"]))


@pytest.mark.parametrize(("analyses", "shown", "boxes", "class_ids", "classes"), [
    ((CELLS,), None, 2, [0, 1], ("cell", "crystal")),
    ((CELLS, DEBRIS), None, 3, [0, 1, 2], ("cells/cell", "cells/crystal", "debris/speck")),
    ((CELLS, DEBRIS), {"main"}, 2, [0, 1], ("cell", "crystal")),
    ((CELLS, DEBRIS), {"debris"}, 1, [0], ("speck",)),
    ((CELLS, SKIPPED), None, 2, [0, 1], ("cell", "crystal")),
    ((CELLS, DEBRIS), set(), 0, [], ()),
])
def test_overlay_of_several_models(analyses: tuple[Analysis, ...], shown: set[str] | None, boxes: int, class_ids: list[int],
                                   classes: tuple[str, ...]) -> None:
    detections, names = overlay_detections(analyses, shown)
    assert len(detections) == boxes and detections.class_ids.tolist() == class_ids and names == classes
