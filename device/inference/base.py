"""What every inference backend is (`Backend`) and what one may be given besides its bundle
(`BackendContext`). Apart from the registry (device/inference/backend.py), so that each backend
module can name these types without importing the registry that imports it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from device.hive.settings import HiveSettings


class Backend(Protocol):
    """Runs one model: float32 input batch in, named outputs out (in the model's output order)."""

    name: str

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class BackendContext:
    """What a backend may need beyond the bundle: the hive settings, the source's frame period
    (the remote backend's deadline is counted in frame periods) and, for a backend that runs off
    the device, the local backend it falls back on (built by the registry, None for `none`)."""

    hive: HiveSettings = field(default_factory=HiveSettings)  # type: ignore[arg-type]
    period_s: Callable[[], float | None] = lambda: None
    fallback: Backend | None = None
