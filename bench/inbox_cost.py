"""Benchmark: what the review inbox costs the frame loop.

Prints the CPU time per frame of (a) deciding, for a frame with no reason (two models of 100
objects each, agreeing, scores far from the threshold: what almost every frame is), and (b) the
perceptual hash of a 1280x960 colour frame, paid only by a frame that has a reason (at most one
per reason every `min_interval_s`). Medians of 5 runs.

    PYTHONPATH=. python bench/inbox_cost.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from device.analysis import Analysis
from device.detections import Detections
from device.inbox.phash import phash
from device.inbox.settings import InboxSettings
from device.inbox.store import InboxStore
from device.inbox.watch import Inbox
from device.models.bundle import ModelCard
from device.sources.capture import Frame

CARD = ModelCard.model_validate({"name": "cells", "version": "1", "classes": ["cell", "debris"], "score_threshold": 0.5,
                                 "input": {"width": 32, "height": 32}, "created": "2026-12-01T00:00:00Z"})


def _analysis(pipeline: str, rng: np.random.Generator, n: int = 100) -> Analysis:
    xy = rng.uniform(0, 1200, (n, 2))
    boxes = np.concatenate([xy, xy + 20], axis=1)
    return Analysis(pipeline, "local", Detections(boxes, np.full(n, 0.95, np.float32), np.zeros(n, np.int32)), CARD)


def _cpu_ms(fn, calls: int) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(calls):
            fn()
        runs.append((time.process_time() - start) / calls * 1000)
    return float(np.median(runs))


def main() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (960, 1280, 3), dtype=np.uint8)
    frame = Frame(image, 1, 1.0e9, 0.0)
    analyses = [_analysis("main", rng), _analysis("beside", rng)]
    with tempfile.TemporaryDirectory() as tmp:
        inbox = Inbox(InboxSettings(spot_share=0.0), InboxStore(Path(tmp), 50, 10**8))
        decide = _cpu_ms(lambda: inbox.consider(frame, analyses), 2000)
    hashing = _cpu_ms(lambda: phash(image), 50)
    print(f"inbox, deciding on a frame without a reason (2 models x 100 objects): {decide:.3f} ms CPU per frame")
    print(f"inbox, perceptual hash of a 1280x960 colour frame (frames with a reason only): {hashing:.2f} ms CPU")


if __name__ == "__main__":
    main()
