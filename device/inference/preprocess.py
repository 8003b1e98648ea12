"""Frame -> network input tensor, and network boxes -> frame boxes. Pure numpy/OpenCV, no model code."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from device.detections import Detections
from device.models.bundle import InputSpec, Normalization

LETTERBOX_FILL = 114


@dataclass(frozen=True)
class Transform:
    """How network pixels map back to the frame: frame = (net - pad) / scale."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    frame_width: int
    frame_height: int

    def to_frame(self, detections: Detections) -> Detections:
        if not len(detections):
            return detections
        shift = np.asarray([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)
        scale = np.asarray([self.scale_x, self.scale_y, self.scale_x, self.scale_y], np.float32)
        moved = Detections((detections.xyxy - shift) / scale, detections.scores, detections.class_ids)
        return moved.clipped(self.frame_width, self.frame_height)


def interpolation(src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> int:
    """The one resize rule the trainer and the device share: area averaging when either side
    shrinks (every input pixel counts, so small specks are not skipped), bilinear when the frame
    only grows (OpenCV's area mode enlarges by its own, blockier rule, which training never saw)."""
    (sw, sh), (dw, dh) = src_wh, dst_wh
    return cv2.INTER_AREA if dw < sw or dh < sh else cv2.INTER_LINEAR


def resize_to(image: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """`image` resized to (width, height) by the shared rule (always a new array)."""
    return cv2.resize(image, size_wh, interpolation=interpolation((image.shape[1], image.shape[0]), size_wh))


def fit(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Transform]:
    """Resize to the network size: `stretch` fills it, `letterbox` keeps the aspect ratio and pads."""
    h, w = image.shape[:2]
    if spec.resize == "stretch":
        resized = resize_to(image, (spec.width, spec.height))
        return resized, Transform(spec.width / w, spec.height / h, 0.0, 0.0, w, h)
    scale = min(spec.width / w, spec.height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = resize_to(image, (nw, nh))
    pad_x, pad_y = (spec.width - nw) // 2, (spec.height - nh) // 2
    canvas = np.full((spec.height, spec.width, image.shape[2]), LETTERBOX_FILL, image.dtype)
    canvas[pad_y : pad_y + nh, pad_x : pad_x + nw] = resized
    return canvas, Transform(scale, scale, float(pad_x), float(pad_y), w, h)


def _gain_offset(norm: Normalization) -> tuple[np.ndarray, np.ndarray]:
    """network_input = pixel * gain - offset, per channel, in float32 (what every backend was fed)."""
    std = np.asarray(norm.std, np.float32)
    return np.float32(norm.scale) / std, np.asarray(norm.mean, np.float32) / std


def _affine(pixels: np.ndarray, gain: float, offset: float, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 -> float32 `pixels * gain - offset` in one OpenCV pass (no float64 or broadcast temporaries)."""
    return cv2.addWeighted(pixels, gain, pixels, 0.0, -offset, dst=out, dtype=cv2.CV_32F)


def normalize(image: np.ndarray, spec: InputSpec, norm: Normalization) -> np.ndarray:
    """8-bit BGR (H, W, 3) -> float32 batch of one in the model's colour order, scaling and layout.

    At memory speed: one contiguous `cvtColor` for the channel order, then one OpenCV pass that
    converts and scales (`addWeighted`), per plane for NCHW (no transpose copy). The numpy form it
    replaced (a reversed-stride view, `astype`, broadcast multiply and subtract) took 11.7-14 ms
    per 960x704 input instead of about 0.4-1 ms; the output differs by at most 1.2e-7
    (tests/device/inference/test_preprocess.py, bench/preprocess_speed.py)."""
    pixels = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if spec.color == "RGB" else image
    gain, offset = _gain_offset(norm)
    if spec.layout == "NCHW":
        h, w = pixels.shape[:2]
        tensor = np.empty((1, 3, h, w), np.float32)
        for c, plane in enumerate(cv2.split(pixels)):
            _affine(plane, float(gain[c]), float(offset[c]), out=tensor[0, c])
        return tensor
    if np.all(gain == gain[0]) and np.all(offset == offset[0]):
        return _affine(np.ascontiguousarray(pixels), float(gain[0]), float(offset[0]))[None]
    tensor = pixels.astype(np.float32)  # per-channel gains: still in place, no temporaries
    np.multiply(tensor, gain, out=tensor)
    np.subtract(tensor, offset, out=tensor)
    return tensor[None]


def preprocess(image: np.ndarray, spec: InputSpec, norm: Normalization) -> tuple[np.ndarray, Transform]:
    fitted, transform = fit(image, spec)
    return normalize(fitted, spec, norm), transform


def denormalize(tensor: np.ndarray, spec: InputSpec, norm: Normalization) -> np.ndarray:
    """The inverse of `normalize`: a batch of one -> the 8-bit BGR fitted frame it was made from
    (exact for 8-bit input). Lets a remote backend send the fitted frame as JPEG while every
    backend keeps one interface: tensor in, outputs out."""
    image = tensor[0]
    if spec.layout == "NCHW":
        image = image.transpose(1, 2, 0)
    gain, offset = _gain_offset(norm)
    pixels = np.clip(np.rint((image + offset) / gain), 0, 255).astype(np.uint8)
    if spec.color == "RGB":
        pixels = pixels[:, :, ::-1]
    return np.ascontiguousarray(pixels)
