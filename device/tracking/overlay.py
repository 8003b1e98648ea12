"""Drawing tracks on the live stream: the id beside each box and the counting line with its count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from device.detections import Detections

if TYPE_CHECKING:
    from device.analysis import Analysis

_LINE_COLOUR = (0, 220, 255)  # BGR amber: visible on grey backgrounds, unlike any class colour


@dataclass(frozen=True)
class TrackOverlay:
    """What the stream draws besides the boxes: track ids and the counting line with its count."""

    ids: np.ndarray | None  # aligned with the frame's detections; None when ids are hidden
    line: tuple[float, float, float, float] | None
    crossed: int  # forward crossings of all classes since the line was set
    normal: tuple[float, float] = (0.0, 0.0)
    reappeared: int = 0  # tracks of this frame seen again after missed frames (the inbox's "flicker")


def draw_tracks(canvas: np.ndarray, detections: Detections, overlay: TrackOverlay, scale: float) -> None:
    """Draw in place on an 8-bit BGR canvas."""
    thickness = max(1, round(scale * 2))
    if overlay.ids is not None and len(overlay.ids) == len(detections):
        for (x1, y1, _x2, _y2), tid in zip(detections.xyxy.astype(np.int32).tolist(), overlay.ids.tolist(), strict=True):
            cv2.putText(canvas, str(tid), (x1, max(10, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale,
                        (255, 255, 255), 1, cv2.LINE_AA)
    if overlay.line is None:
        return
    x1, y1, x2, y2 = (int(round(v)) for v in overlay.line)
    cv2.line(canvas, (x1, y1), (x2, y2), _LINE_COLOUR, thickness, cv2.LINE_AA)
    mx, my = (x1 + x2) // 2, (y1 + y2) // 2
    tip = (int(mx + overlay.normal[0] * 25 * scale), int(my + overlay.normal[1] * 25 * scale))
    cv2.arrowedLine(canvas, (mx, my), tip, _LINE_COLOUR, thickness, cv2.LINE_AA, tipLength=0.35)
    cv2.putText(canvas, f"crossed {overlay.crossed}", (tip[0] + 4, tip[1]), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale,
                _LINE_COLOUR, thickness, cv2.LINE_AA)


def draw_track_overlays(canvas: np.ndarray, analyses: tuple[Analysis, ...], shown: set[str] | None) -> None:
    """Ids and counting line of every analysed model whose overlay is on (see LiveBoard)."""
    scale = max(1.0, canvas.shape[1] / 1280)
    for analysis in analyses:
        overlay = analysis.extra.get("tracking")
        if isinstance(overlay, TrackOverlay) and analysis.detections is not None and (shown is None or analysis.pipeline in shown):
            draw_tracks(canvas, analysis.detections, overlay, scale)
