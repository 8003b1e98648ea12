"""The newest processed frame as the web side sees it: pixels, each model's analysis, the
annotated JPEG (encoded on demand, once per frame) and the live statistics."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from device.analysis import LOCAL, NO_MODEL, NOT_ANALYSED, Analysis, is_route
from device.colours import default_colour
from device.detections import Detections
from device.metrics.stats import FpsMonitor
from device.render import ModelLayer, OverlayState, draw_overlay, encode_jpeg, not_analysed_text
from device.tracking.overlay import draw_track_overlays
from device.web_protocol import LatestFrame


def _name(analysis: Analysis, several: bool) -> str:
    """A model's legend title: its name; with several on the feed the slot too (two slots may run one bundle)."""
    name = analysis.card.name if analysis.card is not None else "model"
    return f"{analysis.pipeline} ({name})" if several else name


def overlay_state(latest: LatestFrame, shown: set[str] | None, colours: Mapping[str, str], fps: float) -> OverlayState:
    """What the overlay of this frame shows: one layer per model whose overlay is on, in slot order
    (its style), with its own boxes and counts, or the word that says why it did not look."""
    if not latest.analyses:
        return OverlayState(fps, (_main_only(latest, colours),))
    drawn = [(slot, a) for slot, a in enumerate(latest.analyses) if shown is None or a.pipeline in shown]
    layers = []
    for slot, analysis in drawn:
        classes = tuple(analysis.card.classes) if analysis.card is not None else ()
        palette = tuple(colours.get(c) or default_colour(i) for i, c in enumerate(classes))
        layers.append(ModelLayer(_name(analysis, len(drawn) > 1), analysis.inference, analysis.detections, classes, palette, slot))
    return OverlayState(fps, tuple(layers))


def _main_only(latest: LatestFrame, colours: Mapping[str, str]) -> ModelLayer:
    """A frame posted without per-model analyses (test doubles): the main model's, from its stats."""
    palette = tuple(colours.get(c) or default_colour(i) for i, c in enumerate(latest.classes))
    if latest.detections is None:
        word = str(latest.stats.get("analysed") or NO_MODEL)
        return ModelLayer("model", word if word in NOT_ANALYSED else NO_MODEL, None, latest.classes, palette)
    route = str(latest.stats.get("inference") or LOCAL)
    return ModelLayer("model", route if is_route(route) else LOCAL, latest.detections, latest.classes, palette)


def _counts(detections: Detections | None, classes: tuple[str, ...] | list[str]) -> dict[str, int] | None:
    if detections is None:
        return None
    per_class = np.bincount(detections.class_ids, minlength=len(classes)) if len(detections) else np.zeros(len(classes), int)
    return {name: int(per_class[i]) for i, name in enumerate(classes)}


class LiveBoard:
    """Holds the newest frame for readers on other threads; the loop only calls `post()`."""

    def __init__(self) -> None:
        self.fps = FpsMonitor()
        self.overlays: set[str] | None = None  # pipeline names drawn on the stream; None = all with overlay on
        self._latest: LatestFrame | None = None
        self._jpeg: tuple[int, bytes] | None = None
        self._jpeg_lock = threading.Lock()
        self.class_colours: dict[str, str] = {}  # name -> #rrggbb, from the panel's current project
        self.routes: dict[str, str] = {}  # slot -> where its newest analysed frame ran (local, remote:..., fallback)

    def set_class_colours(self, colours: dict[str, str]) -> None:
        with self._jpeg_lock:
            self.class_colours = dict(colours)
            self._jpeg = None  # the next frame is drawn in the new colours

    def colours(self, classes: tuple[str, ...]) -> list[str]:
        """Each class's colour: the project's by name, else the default of its position."""
        chosen = self.class_colours
        return [chosen.get(name) or default_colour(i) for i, name in enumerate(classes)]

    def post(self, latest: LatestFrame) -> None:
        for analysis in latest.analyses:
            if analysis.analysed:
                self.routes[analysis.pipeline] = analysis.inference
        self._latest = latest

    def latest(self) -> LatestFrame | None:
        return self._latest

    def overlay_state(self) -> OverlayState | None:
        latest = self._latest
        return None if latest is None else overlay_state(latest, self.overlays, self.class_colours, self.fps.fps)

    def annotated_jpeg(self, quality: int = 80) -> bytes | None:
        latest = self._latest
        if latest is None:
            return None
        with self._jpeg_lock:
            if self._jpeg is not None and self._jpeg[0] == latest.index:
                return self._jpeg[1]
            state = overlay_state(latest, self.overlays, self.class_colours, self.fps.fps)
            overlay = draw_overlay(latest.image, state, lambda canvas: draw_track_overlays(canvas, latest.analyses, self.overlays))
            self._jpeg = (latest.index, encode_jpeg(overlay.image, quality))
            return self._jpeg[1]

    def live_stats(self) -> dict[str, Any]:
        """Counts of the main model's newest frame (`count` None when it was not analysed;
        `count_estimate` its dense-frame corrected count where the bundle has count_models), and
        under `feed`, per model on the feed, its own count, counts per class, and where it runs."""
        latest = self._latest
        stats = dict(latest.stats) if latest else {}
        counts: dict[str, int] = {}
        if latest is not None and "count" in stats:
            counts = _counts(latest.detections, latest.classes) or {}
        models = {a.pipeline: self._model(a) for a in (latest.analyses if latest else ())}
        return {"time": time.time(), "frame_index": latest.index if latest else None, "counts": counts,
                "colours": dict(zip(latest.classes, self.colours(latest.classes), strict=True)) if latest else {},
                "fps": round(self.fps.fps, 2), "count": stats.get("count"), "count_estimate": stats.get("count_estimate"),
                "inference": stats.get("inference"),
                "inference_ms": stats.get("inference_ms"), "latency_ms": stats.get("latency_ms"), "feed": models}

    def _model(self, analysis: Analysis) -> dict[str, Any]:
        classes = tuple(analysis.card.classes) if analysis.card else ()
        return {"inference": analysis.inference, "count": None if analysis.detections is None else len(analysis.detections),
                "counts": _counts(analysis.detections, classes), "model": analysis.card.label if analysis.card else None,
                "name": analysis.card.name if analysis.card else None, "route": self.routes.get(analysis.pipeline),
                "excluded": None if analysis.analysed else not_analysed_text(analysis.inference),
                "inference_ms": round(analysis.inference_ms, 2) if analysis.analysed else None,
                "colours": dict(zip(classes, self.colours(classes), strict=True))}
