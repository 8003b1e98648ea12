"""TensorRT backend (NVIDIA GPUs, Jetson): runs the bundle's engine for this TensorRT version and
GPU, or builds one from model.onnx on the device (minutes on a Nano), logging progress, and caches
it under the data dir so the next start is instant.

tensorrt and pycuda come from JetPack / NVIDIA's index: they are imported only when this backend
is chosen, so CPU machines import `device` without them.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from device.inference.base import BackendContext
from device.models.bundle import BundleError, ModelBundle

log = logging.getLogger(__name__)


def tensorrt_available() -> bool:
    """True when tensorrt and pycuda import and a CUDA device answers."""
    try:
        import pycuda.driver as cuda
        import tensorrt  # noqa: F401

        cuda.init()
        return bool(cuda.Device.count())
    except Exception:
        return False


def _compute_capability() -> str:
    import pycuda.driver as cuda

    cuda.init()
    major, minor = cuda.Device(0).compute_capability()
    return f"{major}.{minor}"


def build_engine(onnx_path: Path, target: Path, fp16: bool = True) -> Path:
    """ONNX -> serialized engine at `target` (written atomically), logging each stage and its time."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0 if int(trt.__version__.split(".")[0]) >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BundleError(f"{onnx_path}: TensorRT cannot parse the model: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
    if fp16 and builder.platform_has_fast_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    start = time.monotonic()
    log.info("building a TensorRT %s engine from %s; this can take minutes on a Jetson", trt.__version__, onnx_path)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BundleError(f"{onnx_path}: TensorRT failed to build an engine (see the log above)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(bytes(serialized))
    partial.replace(target)
    log.info("TensorRT engine built in %.0f s and cached at %s", time.monotonic() - start, target)
    return target


def engine_path_for(bundle: ModelBundle, cache_dir: Path) -> Path:
    """The bundle's own engine for this TensorRT + GPU, else the cached (or to-be-built) one."""
    import tensorrt as trt

    capability = _compute_capability()
    shipped = bundle.engine_for(trt.__version__, capability)
    if shipped is not None:
        return shipped
    version = ".".join(trt.__version__.split(".")[:2])
    cached = cache_dir / "engines" / f"{bundle.fingerprint()[:16]}_trt{version}_sm{capability.replace('.', '')}_fp16.engine"
    return cached if cached.is_file() else build_engine(bundle.onnx_path, cached)


class TensorRtBackend:
    """Deserialises the engine once, keeps pinned host and device buffers, runs one stream."""

    def __init__(self, bundle: ModelBundle, cache_dir: Path, context: BackendContext | None = None) -> None:
        try:
            import pycuda.autoinit  # noqa: F401  (creates the CUDA context)
            import pycuda.driver as cuda
            import tensorrt as trt
        except ImportError as exc:
            raise BundleError("backend 'tensorrt' needs tensorrt and pycuda (JetPack or NVIDIA's index); "
                              "use backend 'onnx' on this machine") from exc
        self._cuda = cuda
        path = engine_path_for(bundle, cache_dir)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            raise BundleError(f"{path}: TensorRT cannot load this engine (built by another version?); delete it to rebuild")
        self._context = self._engine.create_execution_context()
        self._stream = cuda.Stream()
        self._buffers: dict[str, tuple[Any, Any]] = {}
        self._inputs: list[str] = []
        self.output_names: list[str] = []
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            shape = tuple(self._engine.get_tensor_shape(name))
            dtype = trt.nptype(self._engine.get_tensor_dtype(name))
            host = cuda.pagelocked_empty(shape, dtype)
            device = cuda.mem_alloc(host.nbytes)
            self._buffers[name] = (host, device)
            self._context.set_tensor_address(name, int(device))
            is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self._inputs if is_input else self.output_names).append(name)
        self.name = f"tensorrt/{trt.__version__}"

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        cuda = self._cuda
        host, device = self._buffers[self._inputs[0]]
        np.copyto(host, tensor.reshape(host.shape))
        cuda.memcpy_htod_async(device, host, self._stream)
        self._context.execute_async_v3(self._stream.handle)
        for name in self.output_names:
            out_host, out_device = self._buffers[name]
            cuda.memcpy_dtoh_async(out_host, out_device, self._stream)
        self._stream.synchronize()
        return {name: self._buffers[name][0].copy() for name in self.output_names}
