"""A model let go gives its memory back: the slot drops its last reference to the old detector
before it trims the heap (device/heap.py), on removal and on a switch alike."""

from __future__ import annotations

import weakref
from pathlib import Path

import pytest

from device import heap
from device.pipeline import ModelSlot


class FakeDetector:
    pass


@pytest.mark.parametrize("let_go", ["clear", "switch"])
def test_the_old_detector_is_freed_before_the_heap_is_trimmed(monkeypatch: pytest.MonkeyPatch, let_go: str) -> None:
    released: list[int] = []  # ids only: the pool keeps no reference once the last slot lets go
    slot = ModelSlot(lambda path: FakeDetector(), lambda d: released.append(id(d)))  # type: ignore[arg-type, return-value]
    slot.load(Path("a"))
    old, old_id = weakref.ref(slot.detector), id(slot.detector)  # type: ignore[arg-type]
    alive_at_trim: list[bool] = []

    def trim() -> bool:
        alive_at_trim.append(old() is not None)
        return True

    monkeypatch.setattr(heap, "trim", trim)
    if let_go == "clear":
        slot.clear()
    else:
        slot.load(Path("b"))
    assert released == [old_id]  # handed to the pool once
    assert alive_at_trim == [False]  # trimmed once, after the session could be freed


def test_trim_answers_on_any_libc() -> None:
    assert heap.trim() in (True, False)
