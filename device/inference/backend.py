"""The one small interface every inference backend implements, and the explicit registry of them.

GPU libraries are imported inside the backend that needs them, so `import device` works on any
CPU machine; `auto` picks TensorRT where it can run and otherwise the faster CPU backend
(measured by bench/device_backends.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from device.hive.settings import HiveSettings
from device.models.bundle import ModelBundle

log = logging.getLogger(__name__)
# bench/device_backends.py on the 2-core x86 reference box (OpenCV 5.0, onnxruntime 1.31): the
# demo model runs at 26 frames/s on onnxruntime and not at all on cv2.dnn (its new graph engine
# rejects the model); on the test peak detector both give the same boxes and onnxruntime is ~6x
# faster. So ONNX Runtime is the CPU default; `opencv` stays selectable for models it runs well.
CPU_DEFAULT = "onnx"


class Backend(Protocol):
    """Runs one model: float32 input batch in, named outputs out (in the model's output order)."""

    name: str

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class BackendContext:
    """What a backend may need beyond the bundle: the hive settings and the source's frame
    period (the remote backend's deadline is counted in frame periods)."""

    hive: HiveSettings = field(default_factory=HiveSettings)  # type: ignore[arg-type]
    period_s: Callable[[], float | None] = lambda: None


class BackendFactory(Protocol):
    def __call__(self, bundle: ModelBundle, cache_dir: Path) -> Backend: ...


def _registry() -> dict[str, BackendFactory]:
    from device.inference.onnx_backend import OnnxBackend
    from device.inference.opencv_backend import OpenCvBackend
    from device.inference.tensorrt_backend import TensorRtBackend
    from device.inference.triton_backend import TritonBackend

    return {"onnx": OnnxBackend, "opencv": OpenCvBackend, "tensorrt": TensorRtBackend, "triton": TritonBackend}


def backend_keys() -> list[str]:
    return sorted(_registry())


def resolve_backend_key(key: str) -> str:
    """`auto` -> `tensorrt` on a machine with TensorRT and a CUDA GPU, else the CPU default."""
    if key != "auto":
        return key
    from device.inference.tensorrt_backend import tensorrt_available

    return "tensorrt" if tensorrt_available() else CPU_DEFAULT


def create_backend(key: str, bundle: ModelBundle, cache_dir: Path, context: BackendContext | None = None) -> Backend:
    """Build the backend named `key` for `bundle`; unknown keys fail with the list of known ones."""
    registry = _registry()
    resolved = resolve_backend_key(key)
    if resolved not in registry:
        raise ValueError(f"unknown backend '{key}': choose one of auto, {', '.join(sorted(registry))}")
    if resolved == "triton":  # the one backend that needs more than the bundle
        from device.inference.triton_backend import TritonBackend

        return TritonBackend(bundle, cache_dir, context)
    return registry[resolved](bundle, cache_dir)
