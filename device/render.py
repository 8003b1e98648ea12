"""Drawing the annotated frame of the live stream: boxes in class colours, counts and FPS."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from device.colours import class_colours, default_colour, hex_to_bgr
from device.detections import Detections
from device.sources.base import to_bgr8

LEGEND_ALPHA = 0.45  # the counts panel is see-through: objects under it stay visible


def class_colour(class_id: int) -> tuple[int, int, int]:
    """BGR default colour of a class id (the panel's default for the same position)."""
    return hex_to_bgr(default_colour(class_id))


def annotate(image: np.ndarray, detections: Detections, classes: Sequence[str], fps: float,
             colours: Sequence[str] | None = None) -> np.ndarray:
    """A new 8-bit BGR image with every box drawn and a small, translucent legend of counts.

    `colours` are the project's #rrggbb per class id; without them each class gets the default
    colour of its position, which is also what a new project gives it.
    """
    canvas = to_bgr8(image).copy()
    chosen = [hex_to_bgr(c) for c in (colours or class_colours(classes))]
    bgr = chosen + [class_colour(i) for i in range(len(chosen), 256)]
    pick = bgr.__getitem__
    thickness = max(1, round(max(canvas.shape[:2]) / 800))
    for (x1, y1, x2, y2), cid in zip(detections.xyxy.astype(np.int32).tolist(), detections.class_ids.tolist(), strict=True):
        cv2.rectangle(canvas, (x1, y1), (x2, y2), pick(cid), thickness, cv2.LINE_8)  # axis-aligned: exact colours
    counts = np.bincount(detections.class_ids, minlength=len(classes)) if len(detections) else np.zeros(len(classes), int)
    lines = [(f"{fps:4.1f} FPS  {len(detections)} objects", (255, 255, 255))]
    lines += [(f"{name}: {int(counts[i])}", pick(i)) for i, name in enumerate(classes)]
    _legend(canvas, lines)
    return canvas


def _legend(canvas: np.ndarray, lines: list[tuple[str, tuple[int, int, int]]]) -> None:
    """Counts in the top-left corner: small text on a translucent dark panel."""
    scale = max(0.35, canvas.shape[1] / 2400)
    step = max(12, int(22 * scale))
    width = min(canvas.shape[1], int(230 * scale) + 8)
    height = min(canvas.shape[0], step * len(lines) + 6)
    region = canvas[:height, :width]
    cv2.addWeighted(region, 1 - LEGEND_ALPHA, np.zeros_like(region), LEGEND_ALPHA, 0, dst=region)
    for row, (text, colour) in enumerate(lines):
        cv2.putText(canvas, text, (5, step * (row + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return data.tobytes()
