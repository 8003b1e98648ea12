"""How objects of the synthetic microscope move, so every tracking figure has a ground truth.

Modes (SyntheticConfig.motion):
- `brownian`: stage drift plus Brownian jitter (the original behaviour, the same frames per seed);
- `swim`: cells are directed swimmers at `swim_speed` px/frame on slowly turning headings, crystals
  and debris stay put (drift and jitter apply to all);
- `flow`: laminar (Poiseuille) flow along +x through a channel whose walls are the top and bottom of
  the frame; objects enter at the left at the rate the set density implies and leave at the right.

Kept apart from the renderer so the kinematics are plain numpy, tested without drawing a pixel.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Motion = Literal["brownian", "swim", "flow"]
SWIMMING_CLASSES = frozenset({0})  # cells swim; crystals and debris are the field's still reference


def flow_speed_at(y: np.ndarray | float, height: float, peak: float) -> np.ndarray:
    """Poiseuille profile across the channel: `peak` px/frame on the centreline, 0 at the walls."""
    yy = np.clip(np.asarray(y, np.float64), 0.0, height)
    return peak * 4.0 * yy * (height - yy) / height**2


def inflow_per_frame(density_per_mpx: float, height: float, peak: float) -> float:
    """Expected objects entering per frame: areal density x the flux through the inlet (mean speed
    of a Poiseuille profile is 2/3 of the peak)."""
    return density_per_mpx / 1e6 * height * peak * 2.0 / 3.0


def inflow_rows(rng: np.random.Generator, count: int, height: float) -> np.ndarray:
    """Entry heights of `count` new objects, weighted by the local speed (faster lanes carry more)."""
    rows: list[float] = []
    while len(rows) < count:
        y = rng.uniform(0, height, 4 * count)
        keep = rng.uniform(0, 1, y.size) < 4.0 * y * (height - y) / height**2
        rows.extend(y[keep].tolist())
    return np.asarray(rows[:count])


def swim_heading(rng: np.random.Generator, count: int) -> np.ndarray:
    """Random initial headings (radians) of `count` swimmers, isotropic."""
    return rng.uniform(0, 2 * np.pi, count)


def swim_velocity(heading: np.ndarray, speed: float) -> np.ndarray:
    """(n, 2) velocity in px/frame of swimmers with these headings."""
    return np.stack([np.cos(heading), np.sin(heading)], axis=1) * speed
