"""A Backend for tests that answers no boxes and keeps every tensor it was given."""

from __future__ import annotations

import numpy as np


class RecordingBackend:
    name = "recording"

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        self.seen.append(tensor)
        return {"boxes": np.zeros((1, 0, 4), np.float32), "scores": np.zeros((1, 0), np.float32),
                "classes": np.zeros((1, 0), np.int64)}
