"""Per-frame quality: a focus score and exposure fractions, and the `analysed` status they gate.

A frame that fails a gate is recorded (flagged, with its scores) but not analysed, so it never
writes a count: "0 cells" must only ever mean the model looked at a usable frame and found none.
Scoring runs on a 1/4-scale grey copy (each pixel a mean of 8): the averaging removes most sensor noise (which would
otherwise dominate the Laplacian of sharp and blurred frames alike) and keeps the cost near
0.3 ms for a 1280x960 frame. How sharp a sharp frame scores depends on the sample (a sparse
slide has few edges), so the default focus gate is relative: a frame is out of focus when it
scores under 0.55 of what the sharpest recent frames scored.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from device.sources.capture import Frame

Analysed = Literal["ok", "out_of_focus", "overexposed", "underexposed", "no_model", "skipped", "failed"]
ANALYSED: tuple[str, ...] = ("ok", "out_of_focus", "overexposed", "underexposed", "no_model", "skipped", "failed")
_SATURATED = 250  # grey levels at or above: clipped highlights
_DARK = 5
_REFERENCE_EVERY = 15  # frames between recomputations of the sharp-frame reference


class QualitySettings(BaseModel):
    """Gates that keep unusable frames out of counts and experiment statistics."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Score every frame and apply the gates below (false: every frame is analysed)")
    focus_relative_min: float = Field(
        0.55, ge=0, le=1,
        description="Out of focus below this share of the reference focus (90th percentile of the last "
                    "focus_window frames); 0 = no relative gate",
    )
    focus_window: int = Field(300, ge=10, le=100_000, description="Frames the focus reference looks back over")
    focus_min: float = Field(0.0, ge=0, description="Absolute least focus score (variance of the Laplacian of the 1/4-scale grey frame); 0 = off")
    saturated_max: float = Field(0.05, ge=0, le=1, description="Most share of clipped-white pixels (>= 250) of a usable frame")
    dark_max: float = Field(0.5, ge=0, le=1, description="Most share of black pixels (<= 5) of a usable frame")


@dataclass(frozen=True)
class FrameQuality:
    """Scores of one frame; `status` is what the gates made of them."""

    focus: float
    saturated: float
    dark: float
    status: Analysed = "ok"

    @property
    def usable(self) -> bool:
        return self.status == "ok"

    @property
    def reason(self) -> str:
        """The gate's verdict: '' (analyse it) or why not. `skipped` (too odd to score) passes:
        the model decides."""
        return "" if self.status in ("ok", "skipped") else self.status


def _grey_small(image: np.ndarray) -> np.ndarray:
    """8-bit grey copy at 1/4 scale, each pixel the mean of 8 of its 4x4 block (4 columns x every
    other row). Reading every other row halves the memory traffic of the one full-frame pass; a
    bilinear resize to exactly half size is a 2x2 mean and is fast on colour frames (OpenCV's
    INTER_AREA is not); the grey conversion then runs on 1/8 of the pixels and a 2x area step on
    one channel completes the block mean."""
    h, w = image.shape[:2]
    half = cv2.resize(image[::2], (max(1, w // 2), max(1, h // 4)), interpolation=cv2.INTER_LINEAR)
    if half.ndim == 3:
        half = cv2.cvtColor(half, cv2.COLOR_BGR2GRAY) if half.shape[2] == 3 else np.ascontiguousarray(half[:, :, 0])
    small = cv2.resize(half, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)  # x only
    if small.dtype != np.uint8:  # 16-bit or float cameras: their full range onto 8 bits
        top = 65535.0 if small.dtype == np.uint16 else 1.0
        small = cv2.convertScaleAbs(small, alpha=255.0 / top)
    return small


def score(image: np.ndarray) -> tuple[float, float, float]:
    """(focus, saturated fraction, dark fraction) of one frame."""
    grey = _grey_small(image)
    _, std = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_16S, ksize=1))
    n = grey.size
    saturated = cv2.countNonZero(cv2.inRange(grey, _SATURATED, 255)) / n
    dark = cv2.countNonZero(cv2.inRange(grey, 0, _DARK)) / n
    return float(std[0, 0]) ** 2, saturated, dark


class FocusReference:
    """What "sharp" scores on this sample: the 90th percentile of recent usable-exposure frames,
    recomputed every few frames (a percentile per frame would cost more than the scoring)."""

    def __init__(self, window: int) -> None:
        self._scores: deque[float] = deque(maxlen=window)
        self._since = _REFERENCE_EVERY
        self.value = 0.0

    def add(self, focus: float) -> float:
        self._scores.append(focus)
        self._since += 1
        if self._since >= _REFERENCE_EVERY or focus > self.value * 1.5:
            self.value = float(np.percentile(np.fromiter(self._scores, float), 90))
            self._since = 0
        return self.value


class QualityGate:
    """Scores and judges frames in order (the focus reference follows the sample)."""

    def __init__(self, settings: QualitySettings) -> None:
        self.settings = settings
        self.reference = FocusReference(settings.focus_window)

    def assess(self, image: np.ndarray) -> FrameQuality:
        """Score and judge one frame; with the gates off every frame is `ok` and nothing is computed."""
        gates = self.settings
        if not gates.enabled:
            return FrameQuality(float("nan"), float("nan"), float("nan"), "ok")
        if image.ndim not in (2, 3) or min(image.shape[:2]) < 8:
            return FrameQuality(float("nan"), float("nan"), float("nan"), "skipped")
        try:
            focus, saturated, dark = score(image)
        except (cv2.error, ValueError):  # an odd frame: unusable
            return FrameQuality(float("nan"), float("nan"), float("nan"), "skipped")
        if saturated > gates.saturated_max:  # exposure first: a white-out frame also scores unsharp
            return FrameQuality(focus, saturated, dark, "overexposed")
        if dark > gates.dark_max:
            return FrameQuality(focus, saturated, dark, "underexposed")
        reference = self.reference.add(focus)
        if (gates.focus_min and focus < gates.focus_min) or focus < gates.focus_relative_min * reference:
            return FrameQuality(focus, saturated, dark, "out_of_focus")
        return FrameQuality(focus, saturated, dark, "ok")


class QualityFrameGate:
    """The device loop's frame gate (device/analysis.FrameGate): its verdict is the frame's
    `FrameQuality`, whose `reason` is '' or why the frame is not worth analysing. A frame too
    broken to score passes: the model then fails on it and the frame is recorded as `failed`."""

    def __init__(self, settings: QualitySettings) -> None:
        self.gate = QualityGate(settings)

    def __call__(self, frame: Frame) -> FrameQuality:
        return self.gate.assess(frame.image)
