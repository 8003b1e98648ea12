"""The newest processed frame as the web side sees it: pixels, each model's analysis, the
annotated JPEG (encoded on demand, once per frame) and the live statistics."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from device.analysis import Analysis
from device.colours import default_colour
from device.detections import Detections
from device.metrics.stats import FpsMonitor
from device.render import annotate, encode_jpeg
from device.tracking.overlay import draw_track_overlays
from device.web_protocol import LatestFrame


def overlay_detections(analyses: tuple[Analysis, ...], shown: set[str] | None) -> tuple[Detections, tuple[str, ...]]:
    """Boxes of every analysed model whose overlay is on, class ids offset per model so each
    model keeps its own colours and legend lines (`model/class`) when several are drawn."""
    parts: list[Detections] = []
    classes: list[str] = []
    drawn = [a for a in analyses if a.detections is not None and a.card is not None and (shown is None or a.pipeline in shown)]
    for analysis in drawn:
        assert analysis.detections is not None and analysis.card is not None
        d = analysis.detections
        parts.append(Detections(d.xyxy, d.scores, d.class_ids + len(classes)))
        prefix = f"{analysis.card.name}/" if len(drawn) > 1 else ""
        classes.extend(prefix + name for name in analysis.card.classes)
    if not parts:
        return Detections.empty(), tuple(classes)
    return Detections(np.concatenate([p.xyxy for p in parts]), np.concatenate([p.scores for p in parts]),
                      np.concatenate([p.class_ids for p in parts])), tuple(classes)


class LiveBoard:
    """Holds the newest frame for readers on other threads; the loop only calls `post()`."""

    def __init__(self) -> None:
        self.fps = FpsMonitor()
        self.overlays: set[str] | None = None  # pipeline names drawn on the stream; None = all with overlay on
        self._latest: LatestFrame | None = None
        self._jpeg: tuple[int, bytes] | None = None
        self._jpeg_lock = threading.Lock()
        self.class_colours: dict[str, str] = {}  # name -> #rrggbb, from the panel's current project

    def set_class_colours(self, colours: dict[str, str]) -> None:
        with self._jpeg_lock:
            self.class_colours = dict(colours)
            self._jpeg = None  # the next frame is drawn in the new colours

    def colours(self, classes: tuple[str, ...]) -> list[str]:
        """Each class's colour; `model/class` legend names (several models) use the class part."""
        chosen = self.class_colours
        return [chosen.get(name.rsplit("/", 1)[-1]) or default_colour(i) for i, name in enumerate(classes)]

    def post(self, latest: LatestFrame) -> None:
        self._latest = latest

    def latest(self) -> LatestFrame | None:
        return self._latest

    def annotated_jpeg(self, quality: int = 80) -> bytes | None:
        latest = self._latest
        if latest is None:
            return None
        with self._jpeg_lock:
            if self._jpeg is not None and self._jpeg[0] == latest.index:
                return self._jpeg[1]
            detections, classes = latest.detections if latest.detections is not None else Detections.empty(), latest.classes
            if latest.analyses:
                detections, classes = overlay_detections(latest.analyses, self.overlays)
            image = annotate(latest.image, detections, classes, self.fps.fps, self.colours(classes))
            draw_track_overlays(image, latest.analyses, self.overlays)
            self._jpeg = (latest.index, encode_jpeg(image, quality))
            return self._jpeg[1]

    def live_stats(self) -> dict[str, Any]:
        """Counts of the main model's newest frame; `count` is None when it was not analysed."""
        latest = self._latest
        counts: dict[str, int] = {}
        stats = dict(latest.stats) if latest else {}
        if latest is not None and latest.detections is not None and "count" in stats:
            per_class = np.bincount(latest.detections.class_ids, minlength=len(latest.classes))
            counts = {name: int(per_class[i]) for i, name in enumerate(latest.classes)}
        models = {a.pipeline: {"inference": a.inference, "count": None if a.detections is None else len(a.detections),
                               "model": a.card.label if a.card else None}
                  for a in (latest.analyses if latest else ())}
        return {"time": time.time(), "frame_index": latest.index if latest else None, "counts": counts,
                "colours": dict(zip(latest.classes, self.colours(latest.classes), strict=True)) if latest else {},
                "fps": round(self.fps.fps, 2), "count": stats.get("count"), "inference": stats.get("inference"),
                "inference_ms": stats.get("inference_ms"), "latency_ms": stats.get("latency_ms"), "models": models}
