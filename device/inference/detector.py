"""A loaded, checked and warmed-up model: frame in, Detections in frame pixels out."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np

from device.detections import Detections
from device.inference.backend import Backend, BackendContext, create_backend
from device.inference.decode import DecodeError, decode, keep_class_thresholds
from device.inference.preprocess import preprocess
from device.models.bundle import BundleError, ModelBundle, ModelCard, load_bundle
from device.sources.base import to_bgr8

log = logging.getLogger(__name__)
WARMUP_RUNS = 2


def _check_input_shape(bundle: ModelBundle, backend: Backend) -> None:
    """The ONNX input's fixed dimensions must agree with model.json, or every box would be wrong."""
    shape = getattr(backend, "input_shape", None)
    spec = bundle.card.input
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
        self.last_inference_ms = 0.0
        self.last_route = "local"  # or remote:<endpoint> / fallback, from a backend that routes
        self.last_fields: dict[str, float | int] = {}  # extra frame-point fields from the backend (bytes_sent, ...)
        self._lock = threading.Lock()  # the frame loop and the panel's pre-annotation share one model

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def detect(self, image: np.ndarray) -> Detections:
        """Any frame (8/16-bit, grey or colour) -> boxes in that frame's pixels."""
        tensor, transform = preprocess(to_bgr8(image), self.card.input, self.card.normalization)
        with self._lock:
            start = time.perf_counter()
            outputs = self.backend.run(tensor)
            self.last_inference_ms = (time.perf_counter() - start) * 1000.0
            self.last_route = str(getattr(self.backend, "last_route", "local"))
            self.last_fields = dict(getattr(self.backend, "last_fields", {}))
        detections = keep_class_thresholds(decode(outputs, self.card.output, self.threshold), self.thresholds)
        return transform.to_frame(detections)

    def warm_up(self) -> None:
        """First runs allocate and tune; doing them now keeps the first real frames on time and
        proves the outputs decode, so a broken model is rejected before it is swapped in."""
        blank = np.full((self.card.input.height, self.card.input.width, 3), 128, np.uint8)
        try:
            for _ in range(WARMUP_RUNS):
                detections = self.detect(blank)
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
