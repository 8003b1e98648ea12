"""OpenCV DNN backend (CPU): no extra runtime to install, sometimes faster for small models."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from device.inference.base import BackendContext
from device.models.bundle import BundleError, ModelBundle


class OpenCvBackend:
    """cv2.dnn.readNetFromONNX over the bundle's model.onnx, run on the CPU."""

    def __init__(self, bundle: ModelBundle, cache_dir: Path, context: BackendContext | None = None) -> None:
        try:
            self._net = cv2.dnn.readNetFromONNX(str(bundle.onnx_path))
        except cv2.error as exc:
            raise BundleError(f"{bundle.onnx_path}: OpenCV DNN cannot load the model ({str(exc).strip()[-300:]}); "
                              "use backend 'onnx' for this model") from exc
        self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self._net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        self.output_names = list(self._net.getUnconnectedOutLayersNames())
        self.name = "opencv/CPU"

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        self._net.setInput(tensor)
        try:
            outputs = self._net.forward(self.output_names)
        except cv2.error as exc:
            raise BundleError(f"OpenCV DNN failed to run the model ({str(exc).strip()[-300:]}); use backend 'onnx'") from exc
        return dict(zip(self.output_names, (np.asarray(o) for o in outputs), strict=True))
