"""Automatic per-frame scale for frames of unknown µm per pixel (issue 26: one model across
objectives).

A `resize: tile` bundle runs every frame at one scale (network pixels per frame pixel), chosen so
the training objects reached the network at a size it learnt. A frame whose µm per pixel is known
is rescaled by calibration (tiling.calibrated_scale). With no calibration, the objects themselves
say the magnification: their median side in frame pixels, over the last `window` frames that held
at least `min_objects`, against the median side the model was trained to see (network pixels)
gives the scale that brings them back to the trained size:

    wanted = trained_px / live_px

The scale moves on a quarter-octave grid, within `RANGE` either way of the card's, and only when
`wanted` is more than `SWITCH` octaves from the running scale (training jitters scale by about a
quarter octave, so smaller differences are within what the model learnt, and the hysteresis keeps
the scale, and so the tile layout, steady). The first frame with evidence after a start or a
switch is run again at once at the scale it asks for (a first pass), so a new objective is right
from its first frame; later frames use the pooled estimate (no extra pass).

A model run far from its scale may find nothing at all. After `probe_after` consecutive frames with
fewer than `min_objects`, one frame is also run at the next scale of a ladder (x0.5, x2, x0.25, x4
of the card's); a probe that finds `min_objects` or more is adopted. An empty field therefore
costs one extra pass per `probe_after` frames, and never moves the scale.

Pure numpy: the pipeline owns one per model and stream, and puts `auto_scale` (the factor over the
card's scale) and `scale_passes` on the frame's points.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

STEP_OCTAVES = 0.25  # the scale grid: 2 ** (k / 4) times the card's scale
SWITCH = 0.35  # octaves between wanted and running scale before it changes
RANGE = 4.0  # the scale stays within card / RANGE .. card * RANGE
LADDER = (0.5, 2.0, 0.25, 4.0)  # probe factors of the card's scale when nothing is found


@dataclass(frozen=True)
class AutoScaleSettings:
    window: int = 8  # frames of evidence pooled for the estimate
    min_objects: int = 3  # a frame with fewer says nothing about the magnification
    probe_after: int = 15  # consecutive frames with fewer objects before a probe at another scale


@dataclass(frozen=True)
class Decision:
    """What the frame that just ran asks for: `rerun` at `scale` now (a first pass), or nothing."""

    scale: float
    rerun: bool = False
    probe: bool = False


class AutoScale:
    """The running scale of one model on one stream."""

    def __init__(self, card_scale: float, trained_px: float, settings: AutoScaleSettings | None = None) -> None:
        if card_scale <= 0 or trained_px <= 0:
            raise ValueError("the card's scale and the trained object size must be positive")
        self.card_scale = float(card_scale)
        self.trained_px = float(trained_px)  # median object side the network saw in training, network px
        self.settings = settings or AutoScaleSettings()
        self.scale = self.card_scale
        self.live_px: float | None = None  # median object side in frame pixels over the window
        self.switches = 0
        self._window: deque[np.ndarray] = deque(maxlen=self.settings.window)
        self._empty = 0
        self._probes = 0

    @property
    def factor(self) -> float:
        """The running scale over the card's (1.0: as trained; 2.0: objects look half as large)."""
        return self.scale / self.card_scale

    def quantize(self, scale: float) -> float:
        """`scale` on the quarter-octave grid around the card's, within RANGE."""
        octaves = math.log2(max(scale, 1e-9) / self.card_scale)
        limit = math.log2(RANGE)
        steps = round(min(limit, max(-limit, octaves)) / STEP_OCTAVES)
        return self.card_scale * 2.0 ** (steps * STEP_OCTAVES)

    def observe(self, sides_px: np.ndarray) -> Decision:
        """The detections' sides (frame pixels) of the frame just run at `self.scale`."""
        sides = np.asarray(sides_px, np.float64)
        sides = sides[np.isfinite(sides) & (sides > 0)]
        if len(sides) < self.settings.min_objects:
            return self._nothing_found()
        self._empty = 0
        first = not self._window
        self._window.append(sides)
        self.live_px = float(np.median(np.concatenate(self._window)))
        wanted = self.trained_px / self.live_px
        if abs(math.log2(wanted / self.scale)) <= SWITCH:
            return Decision(self.scale)
        new = self.quantize(wanted)
        if new == self.scale:  # at the edge of the range
            return Decision(self.scale)
        self._switch(new)
        return Decision(new, rerun=first)

    def probed(self, scale: float, sides_px: np.ndarray) -> bool:
        """A probe at `scale` found these sides: adopt it when it found enough."""
        if int(np.count_nonzero(np.asarray(sides_px) > 0)) < self.settings.min_objects:
            return False
        self._switch(scale)
        self._window.append(np.asarray(sides_px, np.float64))
        return True

    def _nothing_found(self) -> Decision:
        self._empty += 1
        if self._empty < self.settings.probe_after:
            return Decision(self.scale)
        self._empty = 0
        candidates = [self.card_scale * f for f in LADDER if not math.isclose(self.card_scale * f, self.scale)]
        probe = candidates[self._probes % len(candidates)]
        self._probes += 1
        return Decision(probe, probe=True)

    def _switch(self, scale: float) -> None:
        self.scale = scale
        self.switches += 1
        self._window.clear()
        self._empty = 0
