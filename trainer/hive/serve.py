"""Serve bundles on Triton through PyTriton: KServe v2 over HTTP and gRPC, Prometheus metrics.

Each bundle becomes two models: `<name>.<version>` (the preprocessed tensor in) and
`<name>.<version>_jpeg` (the fitted frame as JPEG in, decoded here). Triton batches requests of
several devices together (dynamic batching)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import sys
import sysconfig
from collections.abc import Iterator
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

    def named(self) -> list[tuple[int, str]]:
        return [(self.http, "KServe v2 HTTP, --http-port"), (self.grpc, "KServe v2 gRPC, --grpc-port"),
                (self.metrics, "Prometheus metrics, --metrics-port")]


EXIT_TIMEOUT_S = 5  # on SIGTERM/SIGINT, in-flight requests get this long before tritonserver exits


class PortInUse(OSError):
    """A port of the server is taken (often the previous `trainer serve` still shutting down)."""


def ports_in_use(ports: Ports) -> list[str]:
    """Which of the three ports something listens on now. Bound with SO_REUSEADDR, as tritonserver
    binds: a port only left in TIME_WAIT by a server that just stopped is free."""
    taken = []
    for port, what in ports.named():
        with socket.socket(socket.AF_INET6 if ":" in ports.host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((ports.host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                taken.append(f"{ports.host}:{port} ({what})")
    return taken


def check_ports(ports: Ports) -> None:
    """Say "address already in use" for what it is, before Triton starts: otherwise PyTriton's
    readiness check reaches the *other* server on the port and reports its refusal of our access
    token (`403 ... triton-access-token`), which names the wrong problem."""
    taken = ports_in_use(ports)
    if taken:
        raise PortInUse(errno.EADDRINUSE, f"address already in use: {', '.join(taken)}; another hive server (or a "
                        f"previous `trainer serve` still stopping) holds it: stop it, or choose other ports")


@contextlib.contextmanager
def sigterm_stops_triton() -> Iterator[None]:
    """SIGTERM (docker stop, systemd, kill) ends serving like Ctrl+C: PyTriton then stops its
    tritonserver child and waits for it, so the ports are free when this process exits. Without
    it the child outlived us by ~30 s (its parent-death signal starts a graceful exit of its own)
    and a restart in that window failed."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    """Blocks until SIGINT/SIGTERM, then stops tritonserver before returning; logs each model's
    name as devices must configure it. A port in use exits with status 2 and says so."""
    use_own_libpython()
    from pytriton.triton import Triton, TritonConfig

    models = [load_served_model(b) for b in bundles]  # fail on a bad bundle before the server starts
    config = TritonConfig(http_address=ports.host, http_port=ports.http, grpc_address=ports.host, grpc_port=ports.grpc,
                          metrics_address=ports.host, metrics_port=ports.metrics, exit_on_error=True,
                          exit_timeout_secs=EXIT_TIMEOUT_S)
    try:
        check_ports(ports)
        with sigterm_stops_triton(), Triton(config=config) as triton:
            for model in models:
                bind(triton, model)
                log.info("serving %s as %s and %s (%s)", model.root, model.name, model.jpeg_name, model.layout)
            print(f"hive server ready: http://{ports.host}:{ports.http} (KServe v2), gRPC {ports.grpc}, metrics {ports.metrics}; "
                  f"models: {', '.join(m.name for m in models)}", flush=True)
            triton.serve()
    except PortInUse as exc:
        print(f"error: {exc.strerror}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass  # SIGINT/SIGTERM during start-up: the context above has stopped tritonserver
    except Exception as exc:
        taken = ports_in_use(ports)  # a port taken while Triton started shows up as some other error
        if not taken:
            raise
        print(f"error: address already in use: {', '.join(taken)} ({type(exc).__name__}: {str(exc)[:200]})", file=sys.stderr)
        raise SystemExit(2) from None
    print("hive server stopped", flush=True)
