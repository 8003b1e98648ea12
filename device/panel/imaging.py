"""Display copies: 8-bit JPEG views of originals that may be 16-bit or high dynamic range.

Originals are never touched; browsers cannot show 16-bit TIFF, so the panel serves these.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB_SIDE = 256


def to_display(image: np.ndarray) -> np.ndarray:
    """8-bit BGR: deep images are stretched between their 0.5 and 99.5 percentiles."""
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.dtype != np.uint8:
        lo, hi = np.percentile(image, (0.5, 99.5))
        scale = 255.0 / max(float(hi - lo), 1e-6)
        image = np.clip((image.astype(np.float32) - lo) * scale, 0, 255).astype(np.uint8)
    if image.ndim == 2 or image.shape[2] == 1:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return bytes(encoded.tobytes())


def display_copies(original: np.ndarray) -> tuple[bytes, bytes]:
    """(full-size display JPEG, thumbnail JPEG) of a decoded original."""
    view = to_display(original)
    h, w = view.shape[:2]
    factor = THUMB_SIDE / max(h, w)
    thumb = cv2.resize(view, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA) if factor < 1 else view
    return jpeg(view, 92), jpeg(thumb, 80)


def camera_channels(image: np.ndarray) -> np.ndarray:
    """A monochrome camera's frame as one channel: sources hand the loop 3 equal channels
    (OpenCV's capture converts), but a capture must keep what the camera saw, not 3x the bytes."""
    if image.ndim == 3 and image.shape[2] == 3:
        b, g, r = image[:, :, 0], image[:, :, 1], image[:, :, 2]
        if np.array_equal(b, g) and np.array_equal(b, r):
            return np.ascontiguousarray(b)
    return image


def encode_original(image: np.ndarray) -> tuple[bytes, str]:
    """A captured frame as lossless PNG at its own bit depth -> (bytes, suffix)."""
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("OpenCV could not encode a PNG")
    return bytes(encoded.tobytes()), ".png"
