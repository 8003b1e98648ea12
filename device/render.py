"""Drawing the annotated frame of the live stream and snapshot, as one pure function of the frame
and its overlay state: every model's boxes in class colours and the model's own line style, and a
legend that says per model what it counted, or why it did not look (never a count then).

`draw_overlay(image, OverlayState)` is all the stream does, so a test can draw the same state and
compare pixels with what the device served.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from device.analysis import (
    FAILED,
    NO_MODEL,
    NOT_ANALYSED,
    OUT_OF_FOCUS,
    OVEREXPOSED,
    SKIPPED,
    UNDEREXPOSED,
)
from device.colours import class_colours, default_colour, hex_to_bgr
from device.detections import Detections
from device.sources.base import to_bgr8

BGR = tuple[int, int, int]
LEGEND_ALPHA = 0.6  # the legend panel is see-through: objects under it stay visible
WHITE: BGR = (255, 255, 255)
AMBER: BGR = (0, 190, 255)  # "not analysed": not the green of "ok", not any class's red
FONT = cv2.FONT_HERSHEY_SIMPLEX
# Each model slot on the feed draws its boxes in its own style (slot 0 solid, 1 dashed, ...), a
# little further out than the slot before, so two models boxing the same object both stay visible.
STYLES: tuple[str, ...] = ("solid", "dashed", "corners", "dotted")
REASONS: dict[str, str] = {
    OUT_OF_FOCUS: "out of focus", OVEREXPOSED: "overexposed", UNDEREXPOSED: "underexposed, too dark",
    SKIPPED: "skipped, runs every k-th frame", NO_MODEL: "no model loaded", FAILED: "failed, unusable frame",
}


def reason_text(word: str) -> str:
    """Why a model did not look at a frame, in words (the overlay's and the Live page's)."""
    return REASONS.get(word, word.replace("_", " "))


def not_analysed_text(word: str) -> str:
    return f"not analysed: {reason_text(word)}"


@dataclass(frozen=True)
class ModelLayer:
    """One model's part of the overlay. `detections is None` exactly when the model did not
    analyse the frame; `inference` is then the word that says why (device/analysis.py)."""

    name: str
    inference: str
    detections: Detections | None
    classes: tuple[str, ...] = ()
    colours: tuple[str, ...] = ()  # #rrggbb by class id; a missing one is the class's default
    style: int = 0  # index into STYLES (the model's slot position on the feed)

    def __post_init__(self) -> None:
        if (self.detections is None) != (self.inference in NOT_ANALYSED):
            raise ValueError(f"overlay layer {self.name}: boxes={self.detections is not None} with inference "
                             f"'{self.inference}' (not analysed is one of {', '.join(NOT_ANALYSED)}, and has no boxes)")

    def colour(self, class_id: int) -> BGR:
        chosen = self.colours[class_id] if class_id < len(self.colours) else default_colour(class_id)
        return hex_to_bgr(chosen)


@dataclass(frozen=True)
class OverlayState:
    """Everything the overlay shows of one frame, besides its pixels."""

    fps: float
    layers: tuple[ModelLayer, ...]


@dataclass(frozen=True)
class LegendLine:
    text: str
    colour: BGR
    style: int | None = None  # a model's header line starts with a sample of its box style


@dataclass(frozen=True)
class Overlay:
    """The drawn frame, the legend's lines and where its background panel lies (x1, y1, x2, y2)."""

    image: np.ndarray
    lines: tuple[LegendLine, ...]
    panel: tuple[int, int, int, int]
    line_boxes: tuple[tuple[int, int, int, int], ...]  # where each line's text (and sample) was drawn


def legend_lines(state: OverlayState) -> list[LegendLine]:
    """FPS, then per model: its count and one line per class, or why it did not analyse the frame."""
    lines = [LegendLine(f"{state.fps:4.1f} FPS", WHITE)]
    for layer in state.layers:
        if layer.detections is None:
            lines.append(LegendLine(f"{layer.name}: NOT ANALYSED ({reason_text(layer.inference)})", AMBER, layer.style))
            continue
        lines.append(LegendLine(f"{layer.name}: {len(layer.detections)} objects", WHITE, layer.style))
        ids = layer.detections.class_ids
        counts = np.bincount(ids, minlength=len(layer.classes)) if len(ids) else np.zeros(len(layer.classes), int)
        lines += [LegendLine(f"  {name}: {int(counts[i])}", layer.colour(i)) for i, name in enumerate(layer.classes)]
    return lines


def draw_overlay(image: np.ndarray, state: OverlayState, decorate: Callable[[np.ndarray], None] | None = None) -> Overlay:
    """A new 8-bit BGR image: every analysed layer's boxes, then `decorate` (track ids, counting
    line), then the legend on top of all of it."""
    canvas = to_bgr8(image).copy()
    thickness = line_thickness(canvas)
    for layer in state.layers:
        if layer.detections is not None:
            _boxes(canvas, layer, thickness)
    if decorate is not None:
        decorate(canvas)
    lines = tuple(legend_lines(state))
    panel, boxes = _legend(canvas, lines, thickness)
    return Overlay(canvas, lines, panel, boxes)


def line_thickness(canvas: np.ndarray) -> int:
    return max(1, round(max(canvas.shape[:2]) / 800))


def _boxes(canvas: np.ndarray, layer: ModelLayer, thickness: int) -> None:
    assert layer.detections is not None
    style = layer.style % len(STYLES)
    grow = layer.style * (thickness + 1)  # slot k's box k steps outside slot 0's
    for (x1, y1, x2, y2), cid in zip(layer.detections.xyxy.astype(np.int32).tolist(), layer.detections.class_ids.tolist(),
                                     strict=True):
        draw_box(canvas, (x1 - grow, y1 - grow, x2 + grow, y2 + grow), layer.colour(cid), thickness, STYLES[style])


def draw_box(canvas: np.ndarray, box: tuple[int, int, int, int], colour: BGR, thickness: int, style: str) -> None:
    """An axis-aligned box (exact colours: no anti-aliasing) in one of STYLES."""
    x1, y1, x2, y2 = box
    if style == "solid":
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_8)
        return
    if style == "corners":
        arm = max(3, min(x2 - x1, y2 - y1) // 3)
        for cx, cy, dx, dy in ((x1, y1, 1, 1), (x2, y1, -1, 1), (x1, y2, 1, -1), (x2, y2, -1, -1)):
            cv2.line(canvas, (cx, cy), (cx + dx * arm, cy), colour, thickness, cv2.LINE_8)
            cv2.line(canvas, (cx, cy), (cx, cy + dy * arm), colour, thickness, cv2.LINE_8)
        return
    dash, gap = (max(4, 3 * thickness), max(3, 2 * thickness)) if style == "dashed" else (thickness, max(2, 2 * thickness))
    for (ax, ay), (bx, by) in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        length = max(abs(bx - ax), abs(by - ay))
        for start in range(0, length + 1, dash + gap):
            end = min(start + dash - 1, length)
            p = (ax + (bx - ax) * start // max(1, length), ay + (by - ay) * start // max(1, length))
            q = (ax + (bx - ax) * end // max(1, length), ay + (by - ay) * end // max(1, length))
            cv2.line(canvas, p, q, colour, thickness, cv2.LINE_8)


def _legend(canvas: np.ndarray, lines: Sequence[LegendLine], thickness: int
            ) -> tuple[tuple[int, int, int, int], tuple[tuple[int, int, int, int], ...]]:
    """The legend in the top-left corner, on a translucent dark panel sized to its longest line."""
    scale = max(0.35, canvas.shape[1] / 2400)
    step = max(12, int(22 * scale))
    sample = step + step // 2  # room for a model's style sample, before its name
    pad = 5
    widths = [cv2.getTextSize(line.text, FONT, scale, 1)[0][0] + (sample if line.style is not None else 0) for line in lines]
    width = min(canvas.shape[1], max(widths) + 2 * pad)
    height = min(canvas.shape[0], step * len(lines) + pad + 2)
    region = canvas[:height, :width]
    cv2.addWeighted(region, 1 - LEGEND_ALPHA, np.zeros_like(region), LEGEND_ALPHA, 0, dst=region)
    boxes = []
    for row, (line, text_width) in enumerate(zip(lines, widths, strict=True)):
        baseline, x = step * (row + 1), pad
        if line.style is not None:
            draw_box(canvas, (x, baseline - step + 4, x + step, baseline), line.colour, 1, STYLES[line.style % len(STYLES)])
            x += sample
        cv2.putText(canvas, line.text, (x, baseline), FONT, scale, line.colour, 1, cv2.LINE_AA)
        boxes.append((pad, baseline - step + 2, pad + text_width, min(height, baseline + 3)))
    return (0, 0, width, height), tuple(boxes)


def annotate(image: np.ndarray, detections: Detections, classes: Sequence[str], fps: float,
             colours: Sequence[str] | None = None, name: str = "objects") -> np.ndarray:
    """One analysed model's frame (the single-model shortcut of draw_overlay). `colours` are the
    project's #rrggbb per class id; without them each class gets the default of its position."""
    layer = ModelLayer(name, "local", detections, tuple(classes), tuple(colours or class_colours(classes)))
    return draw_overlay(image, OverlayState(fps, (layer,))).image


def class_colour(class_id: int) -> BGR:
    """BGR default colour of a class id (the panel's default for the same position)."""
    return hex_to_bgr(default_colour(class_id))


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return data.tobytes()
