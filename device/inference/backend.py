"""The explicit registry of inference backends: `{key: factory}`, every factory called the same
way, `(bundle, cache_dir, context) -> Backend`.

The registry is the one list of backend keys: the CLI's `--backend` choices and the config's
`backend`, `models[].backend` and `hive.local_backend` are checked against it. GPU libraries are
imported inside the backend that needs them, so `import device` works on any CPU machine; `auto`
picks TensorRT where it can run and otherwise the faster CPU backend (measured by
bench/device_backends.py).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Protocol

from pydantic import AfterValidator, WithJsonSchema

from device.inference.base import Backend, BackendContext
from device.inference.onnx_backend import OnnxBackend
from device.inference.opencv_backend import OpenCvBackend
from device.inference.tensorrt_backend import TensorRtBackend, tensorrt_available
from device.inference.triton_backend import TritonBackend
from device.models.bundle import ModelBundle

__all__ = ["BACKENDS", "LOCAL_BACKENDS", "Backend", "BackendContext", "BackendKey", "create_backend"]

log = logging.getLogger(__name__)
# bench/device_backends.py on the 2-core x86 reference box (OpenCV 5.0, onnxruntime 1.31): the
# demo model runs at 26 frames/s on onnxruntime and not at all on cv2.dnn (its new graph engine
# rejects the model); on the test peak detector both give the same boxes and onnxruntime is ~6x
# faster. So ONNX Runtime is the CPU default; `opencv` stays selectable for models it runs well.
CPU_DEFAULT = "onnx"
AUTO, NO_FALLBACK = "auto", "none"


class BackendFactory(Protocol):
    def __call__(self, bundle: ModelBundle, cache_dir: Path, context: BackendContext) -> Backend: ...


def _hive(bundle: ModelBundle, cache_dir: Path, context: BackendContext) -> Backend:
    """The hive backend, given the local backend it falls back on (hive.local_backend)."""
    key = context.hive.local_backend
    fallback = None if key == NO_FALLBACK else _build(LOCAL_BACKENDS, key, bundle, cache_dir, context)
    return TritonBackend(bundle, cache_dir, replace(context, fallback=fallback))


# Backends that run on this device (a remote backend's fallback is one of these).
LOCAL_BACKENDS: dict[str, BackendFactory] = {"onnx": OnnxBackend, "opencv": OpenCvBackend, "tensorrt": TensorRtBackend}
BACKENDS: dict[str, BackendFactory] = {**LOCAL_BACKENDS, "triton": _hive}


def backend_keys() -> list[str]:
    """What `backend` may be: `auto` and every registered key."""
    return [AUTO, *sorted(BACKENDS)]


def local_backend_keys() -> list[str]:
    """What `hive.local_backend` may be: `auto`, a backend that runs here, or `none`."""
    return [AUTO, *sorted(LOCAL_BACKENDS), NO_FALLBACK]


def _one_of(keys: list[str], what: str, value: str) -> str:
    if value not in keys:
        raise ValueError(f"unknown {what} '{value}': choose one of {', '.join(keys)}")
    return value


def check_backend_key(value: str) -> str:
    return _one_of(backend_keys(), "backend", value)


def check_local_backend_key(value: str) -> str:
    return _one_of(local_backend_keys(), "local backend", value)


# The config's type for a backend key: any registered key, as the registry says.
BackendKey = Annotated[str, AfterValidator(check_backend_key), WithJsonSchema({"enum": backend_keys(), "type": "string"})]


def resolve_backend_key(key: str) -> str:
    """`auto` -> `tensorrt` on a machine with TensorRT and a CUDA GPU, else the CPU default."""
    if key != AUTO:
        return key
    return "tensorrt" if tensorrt_available() else CPU_DEFAULT


def _build(registry: dict[str, BackendFactory], key: str, bundle: ModelBundle, cache_dir: Path,
           context: BackendContext) -> Backend:
    factory = registry.get(resolve_backend_key(key))
    if factory is None:
        raise ValueError(f"unknown backend '{key}': choose one of {AUTO}, {', '.join(sorted(registry))}")
    return factory(bundle, cache_dir, context)


def create_backend(key: str, bundle: ModelBundle, cache_dir: Path, context: BackendContext | None = None) -> Backend:
    """Build the backend named `key` for `bundle`; unknown keys fail with the list of known ones."""
    return _build(BACKENDS, key, bundle, cache_dir, context or BackendContext())
