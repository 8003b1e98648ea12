"""Drawing the annotated frame of the live stream: boxes in class colours, counts and FPS."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from device.detections import Detections
from device.sources.base import to_bgr8
from device.tracking.overlay import TrackOverlay, draw_tracks

# BGR, chosen to stay distinguishable on grey microscope backgrounds.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (60, 200, 60), (0, 165, 255), (255, 80, 200), (255, 200, 0), (60, 60, 255),
    (200, 255, 60), (255, 120, 60), (150, 60, 255), (0, 230, 230), (180, 180, 180),
)


def class_colour(class_id: int) -> tuple[int, int, int]:
    return PALETTE[class_id % len(PALETTE)]


def annotate(image: np.ndarray, detections: Detections, classes: Sequence[str], fps: float,
             tracks: TrackOverlay | None = None) -> np.ndarray:
    """A new 8-bit BGR image with every box drawn and a legend of per-class counts and FPS;
    with `tracks`, also the track ids and the counting line."""
    canvas = to_bgr8(image).copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 800))
    for (x1, y1, x2, y2), cid in zip(detections.xyxy.astype(np.int32).tolist(), detections.class_ids.tolist(), strict=True):
        cv2.rectangle(canvas, (x1, y1), (x2, y2), class_colour(cid), thickness, cv2.LINE_8)  # axis-aligned: exact colours
    if tracks is not None:
        draw_tracks(canvas, detections, tracks, max(1.0, canvas.shape[1] / 1280))
    counts = np.bincount(detections.class_ids, minlength=len(classes)) if len(detections) else np.zeros(len(classes), int)
    lines = [(f"{fps:5.1f} FPS  {len(detections)} objects", (255, 255, 255))]
    lines += [(f"{name}: {int(counts[i])}", class_colour(i)) for i, name in enumerate(classes)]
    scale = max(0.5, canvas.shape[1] / 1600)
    step = int(28 * scale)
    cv2.rectangle(canvas, (0, 0), (int(300 * scale), step * len(lines) + 10), (0, 0, 0), -1)
    for row, (text, colour) in enumerate(lines):
        cv2.putText(canvas, text, (8, step * (row + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, max(1, thickness), cv2.LINE_AA)
    return canvas


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return data.tobytes()
