"""A loaded, checked and warmed-up model: frame in, Detections in frame pixels out."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from device.analysis import LOCAL, ModelRun, combine_routes
from device.detections import Detections
from device.inference.backend import Backend, BackendContext, create_backend
from device.inference.decode import DecodeError, decode, keep_class_thresholds
from device.inference.pixels import to_uint8
from device.inference.preprocess import normalize, preprocess
from device.inference.tiling import (
    TileLayout,
    TilePolicy,
    calibrated_scale,
    cut_tiles,
    merge_tiles,
    plan_frame,
)
from device.metrics.points import FieldValue
from device.models.bundle import BundleError, InputSpec, ModelBundle, ModelCard, load_bundle
from device.sources.base import to_bgr8

log = logging.getLogger(__name__)
WARMUP_RUNS = 2


def fed_spec(card: ModelCard, backend: Backend) -> InputSpec:
    """The card's input, in the layout the backend's session takes: a CPU-laid-out model may take
    NCHW where the bundle's graph takes NHWC (device/inference/cpu_layout.py)."""
    layout = getattr(backend, "input_layout", None)
    spec = card.input
    return spec if layout in (None, spec.layout) else spec.model_copy(update={"layout": layout})


def _check_input_shape(bundle: ModelBundle, backend: Backend) -> None:
    """The ONNX input's fixed dimensions must agree with model.json, or every box would be wrong."""
    shape = getattr(backend, "input_shape", None)
    spec = fed_spec(bundle.card, backend)
    if not shape or len(shape) != 4:
        return
    expected = (spec.height, spec.width, 3) if spec.layout == "NHWC" else (3, spec.height, spec.width)
    for have, want in zip(shape[1:], expected, strict=True):
        if isinstance(have, int) and have > 0 and have != want:
            raise BundleError(
                f"{bundle.root / 'model.json'}: input says {spec.width}x{spec.height} {spec.layout}, "
                f"but model.onnx expects {list(shape)}: fix model.json or re-export the model"
            )


class Detector:
    """Owns one backend for one bundle. Built fully (load, check, warm-up) before anyone uses it,
    so a hot swap only ever exchanges two working detectors."""

    def __init__(self, bundle: ModelBundle, backend: Backend, threshold: float | None = None) -> None:
        self.bundle = bundle
        self.card: ModelCard = bundle.card
        self.backend = backend
        # An operator's override applies to every class; otherwise each class has the bundle's own.
        self.thresholds = np.asarray([threshold] * len(self.card.classes) if threshold is not None else self.card.thresholds(), np.float32)
        self.threshold = float(self.thresholds.min())
        self._lock = threading.Lock()  # the frame loop and the panel's pre-annotation share one model
        self.input_spec = fed_spec(self.card, backend)  # what the backend is fed (the card's, or its NCHW)
        self.tile_policy = TilePolicy.of(bundle.card.input)
        self.pixel_rule = bundle.card.input.pixel_rule()  # what training did to frames over 8 bits
        self._layouts: dict[tuple[tuple[int, int], float], TileLayout] = {}
        self.last_layout: TileLayout | None = None  # for tiling_info (/healthz) only; results are returned
        self._last_ms = 0.0

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def detect(self, image: np.ndarray, um_per_pixel: float | None = None) -> Detections:
        """Any frame (8/16-bit, grey or colour) -> boxes in that frame's pixels (the panel's call)."""
        return self.analyse(image, um_per_pixel).detections

    def model_pixels(self, image: np.ndarray) -> np.ndarray:
        """Any frame -> the 8-bit BGR frame the model's input is cut from (the card's pixel rule)."""
        return to_bgr8(to_uint8(image, self.pixel_rule))

    def policy_for(self, um_per_pixel: float | None, scale: float | None = None) -> TilePolicy | None:
        """The tile rule for a frame of this µm per pixel: the card's scale times frame µm/px over
        trained µm/px, so objects reach the network at the size it learnt (None: the card's scale).
        `scale`: run at this scale instead (the automatic per-frame scale, inference/autoscale.py)."""
        policy = self.tile_policy
        if policy is None:
            return None
        if scale is None:
            scale = calibrated_scale(policy.scale, um_per_pixel, self.card.input.um_per_pixel)
        return policy if scale == policy.scale else replace(policy, scale=float(scale))

    def analyse(self, image: np.ndarray, um_per_pixel: float | None = None, scale: float | None = None) -> ModelRun:
        """Any frame -> its boxes with where they were computed and how long it took, as one value:
        two callers (the loop and a panel thread) never read each other's route or timing.
        `um_per_pixel`: the frame's calibration, when known (rescales to the trained size);
        `scale`: a `resize: tile` model runs at this scale instead (ignored by the other fits)."""
        frame = self.model_pixels(image)
        policy = self.policy_for(um_per_pixel, scale)
        if policy is not None:
            return self._analyse_tiled(frame, policy)
        tensor, transform = preprocess(frame, self.input_spec, self.card.normalization)
        with self._lock:
            start = time.perf_counter()
            outputs = self.backend.run(tensor)
            elapsed_ms = (time.perf_counter() - start) * 1000.0
            route, fields = _route_of(self.backend)
        detections = keep_class_thresholds(decode(outputs, self.card.output, self.threshold), self.thresholds)
        self._last_ms = elapsed_ms
        return ModelRun(transform.to_frame(detections), route, elapsed_ms, fields)

    def _analyse_tiled(self, frame: np.ndarray, policy: TilePolicy) -> ModelRun:
        """`resize: tile`: one scale, padded or cut into tiles, one pass per tile, merged. The
        frame's route is every tile's: one tile that fell back makes the frame `fallback`."""
        layout = self._layout(frame.shape[:2], policy)
        tensors = [normalize(tile, self.input_spec, self.card.normalization) for tile in cut_tiles(frame, layout, policy)]
        outputs: list[dict[str, np.ndarray]] = []
        routes: list[str] = []
        fields: dict[str, FieldValue] = {}
        with self._lock:
            start = time.perf_counter()
            for tensor in tensors:
                outputs.append(self.backend.run(tensor))
                route, extra = _route_of(self.backend)
                routes.append(route)
                for key, value in extra.items():
                    fields[key] = round(float(fields.get(key, 0)) + float(value), 3)
            elapsed_ms = (time.perf_counter() - start) * 1000.0
        self.last_layout, self._last_ms = layout, elapsed_ms
        parts = [decode(out, self.card.output, self.threshold) for out in outputs]
        merged = keep_class_thresholds(merge_tiles(parts, layout, policy), self.thresholds)
        fields["input_scale"] = round(layout.scale, 5)  # network pixels per frame pixel this frame ran at
        return ModelRun(merged, combine_routes(routes), elapsed_ms, fields)

    def _layout(self, frame_hw: tuple[int, int], policy: TilePolicy) -> TileLayout:
        """Tiles for this frame size, planned once and said in the log (shrunk frames as a warning)."""
        key = (frame_hw, policy.scale)
        layout = self._layouts.get(key)
        if layout is None:
            if len(self._layouts) > 64:  # a calibration that changes often must not grow this forever
                self._layouts.clear()
            layout = self._layouts[key] = plan_frame(frame_hw, policy)
            h, w = frame_hw
            if layout.scale < policy.scale:
                log.warning("frames of %dx%d would need more than %d tiles at scale %.3f: shrunk to scale %.3f "
                            "(%d tiles) to keep the frame rate; objects look smaller than trained", w, h,
                            policy.max_tiles, policy.scale, layout.scale, len(layout.origins))
            else:
                log.info("frames of %dx%d run at scale %.3f as %d tile(s) of %dx%d", w, h, layout.scale,
                         len(layout.origins), policy.input_hw[1], policy.input_hw[0])
        return layout

    def tiling_info(self) -> dict[str, object]:
        """How frames are fitted to the model, for /healthz and the live statistics."""
        spec = self.card.input
        info: dict[str, object] = {"resize": spec.resize, "input": f"{spec.width}x{spec.height}"}
        policy, layout = self.tile_policy, self.last_layout
        if policy is not None:
            info.update(scale=policy.scale, overlap=policy.overlap, max_tiles=policy.max_tiles)
        if policy is not None and layout is not None:
            info.update(frame=f"{layout.frame_hw[1]}x{layout.frame_hw[0]}", tiles=len(layout.origins),
                        frame_scale=round(layout.scale, 4), shrunk=layout.scale < policy.scale,
                        inference_ms=round(self._last_ms, 2))
        return info

    def warm_up(self) -> None:
        """First runs allocate and tune; doing them now keeps the first real frames on time and
        proves the outputs decode, so a broken model is rejected before it is swapped in."""
        spec = self.card.input
        shrink = 1.0 / self.tile_policy.scale if self.tile_policy else 1.0  # one tile, however the card scales
        blank = np.full((max(1, int(spec.height * shrink)), max(1, int(spec.width * shrink)), 3), 128, np.uint8)
        try:
            for _ in range(WARMUP_RUNS):
                detections = self.detect(blank)
            self._layouts.clear()
            self.last_layout = None
        except DecodeError as exc:
            raise BundleError(f"{self.bundle.root}: outputs do not match output.format '{self.card.output.format}': {exc}") from exc
        except BundleError:
            raise
        except Exception as exc:  # runtimes raise their own types for shape/type mismatches
            raise BundleError(f"{self.bundle.root}: the model fails on a test frame ({type(exc).__name__}: {exc})") from exc
        n_classes = len(self.card.classes)
        if len(detections) and int(detections.class_ids.max()) >= n_classes:
            raise BundleError(f"{self.bundle.root}: the model predicts class {int(detections.class_ids.max())} "
                              f"but model.json lists only {n_classes} classes")


def _route_of(backend: Backend) -> tuple[str, dict[str, FieldValue]]:
    """Where the backend's last run went (a routing backend says; the others ran locally) and its
    extra fields. Read under the detector's lock, right after that run."""
    route = str(getattr(backend, "last_route", LOCAL) or LOCAL)
    fields = getattr(backend, "last_fields", None) or {}
    return route, {k: v for k, v in dict(fields).items() if isinstance(v, int | float)}


def load_detector(path: str | Path, backend: str, cache_dir: Path, threshold: float | None = None,
                  context: BackendContext | None = None) -> Detector:
    """Open, validate, load and warm a bundle; BundleError (with what to do) for anything wrong."""
    start = time.monotonic()
    bundle = load_bundle(path, cache_dir / "bundles")
    try:
        engine = create_backend(backend, bundle, cache_dir, context)
    except BundleError:
        raise
    except ValueError as exc:
        raise BundleError(str(exc)) from exc
    _check_input_shape(bundle, engine)
    detector = Detector(bundle, engine, threshold)
    detector.warm_up()
    log.info("model %s loaded on %s in %.1f s", bundle.card.label, engine.name, time.monotonic() - start)
    return detector
