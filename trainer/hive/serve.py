"""Serve bundles on Triton through PyTriton: KServe v2 over HTTP and gRPC, Prometheus metrics.

Each bundle becomes two models: `<name>.<version>` (the preprocessed tensor in) and
`<name>.<version>_jpeg` (the fitted frame as JPEG in, decoded here). Triton batches requests of
several devices together (dynamic batching)."""

from __future__ import annotations

import logging
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.hive.jpeg_model import jpeg_to_tensor
from trainer.hive.models import ServedModel, load_served_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ports:
    """Where the server listens. The host defaults to loopback: a hive server has no login, so it is
    opened to the network only on purpose (`--host 0.0.0.0` or the LAN address, docs/hive.md)."""

    http: int = 8000
    grpc: int = 8001
    metrics: int = 8002
    host: str = "127.0.0.1"


def use_own_libpython() -> None:
    """PyTriton's Python-backend stub links `libpython3.X.so` by name. Where the interpreter
    running this is not the system's (pyenv, conda), the stub would load the system library
    with this interpreter's standard library and fail at start (seen: `'_thread.RLock' object
    has no attribute '_recursion_count'`). Putting this interpreter's own library first fixes it."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    library = sysconfig.get_config_var("LDLIBRARY") or ""
    if libdir and library.endswith(".so") and (Path(libdir) / library).exists():
        current = os.environ.get("LD_LIBRARY_PATH", "")
        if libdir not in current.split(":"):
            os.environ["LD_LIBRARY_PATH"] = f"{libdir}:{current}" if current else libdir


def tensor_infer(model: ServedModel) -> Any:
    from pytriton.decorators import batch

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        return model.run(inputs[model.input.name].astype(np.float32, copy=False))

    return infer


def jpeg_infer(model: ServedModel) -> Any:
    from pytriton.decorators import batch

    spec = model.input_spec()

    @batch
    def infer(jpeg: np.ndarray) -> dict[str, np.ndarray]:
        tensor = np.stack([jpeg_to_tensor(bytes(item), spec) for item in jpeg.reshape(-1)])
        return model.run(tensor)

    return infer


def bind(triton: Any, model: ServedModel) -> None:
    from pytriton.model_config import ModelConfig, Tensor

    outputs = [Tensor(name=o.name, dtype=o.dtype, shape=o.dims) for o in model.outputs]
    config = ModelConfig(max_batch_size=model.batch)
    triton.bind(model_name=model.name, infer_func=tensor_infer(model), config=config, strict=True,
                inputs=[Tensor(name=model.input.name, dtype=np.float32, shape=model.input.dims)], outputs=outputs)
    triton.bind(model_name=model.jpeg_name, infer_func=jpeg_infer(model), config=config, strict=True,
                inputs=[Tensor(name="jpeg", dtype=np.bytes_, shape=(1,))], outputs=outputs)


def serve(bundles: list[Path], ports: Ports) -> None:
    """Blocks until SIGINT/SIGTERM; logs each model's name as devices must configure it."""
    use_own_libpython()
    from pytriton.triton import Triton, TritonConfig

    models = [load_served_model(b) for b in bundles]  # fail on a bad bundle before the server starts
    config = TritonConfig(http_address=ports.host, http_port=ports.http, grpc_address=ports.host, grpc_port=ports.grpc,
                          metrics_address=ports.host, metrics_port=ports.metrics, exit_on_error=True)
    with Triton(config=config) as triton:
        for model in models:
            bind(triton, model)
            log.info("serving %s as %s and %s", model.root, model.name, model.jpeg_name)
        print(f"hive server ready: http://{ports.host}:{ports.http} (KServe v2), gRPC {ports.grpc}, metrics {ports.metrics}; "
              f"models: {', '.join(m.name for m in models)}", flush=True)
        triton.serve()
