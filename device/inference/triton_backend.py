"""Remote inference on a hive GPU server (Triton, KServe v2): one more backend in the registry.

Frames go to the best ready endpoint within the per-frame deadline; when the hive is slow, gone,
serves another model version or answers with malformed tensors, the same frame runs on the local
backend (`last_route = "fallback"`) and /healthz says why. The device never records a frame
the hive did not answer as "zero objects".
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from device.hive.router import HiveRouter
from device.inference.backend import Backend, BackendContext
from device.inference.decode import DecodeError, decode
from device.models.bundle import BundleError, ModelBundle

log = logging.getLogger(__name__)


class HiveUnavailable(RuntimeError):
    """No endpoint answered and there is no local model to fall back on."""


class TritonBackend:
    """Backend protocol over a HiveRouter, with the local backend as fallback."""

    name = "triton"

    def __init__(self, bundle: ModelBundle, cache_dir: Path, context: BackendContext | None = None) -> None:
        from device.inference.backend import create_backend

        if context is None or not context.hive.endpoints:
            raise BundleError("backend 'triton' needs hive.endpoints (the KServe v2 HTTP URLs of hive servers)")
        self.card = bundle.card
        settings = context.hive
        self.local: Backend | None = None
        if settings.local_backend != "none":
            self.local = create_backend(settings.local_backend, bundle, cache_dir)
        self.input_name: str = bundle.card.input.name or str(getattr(self.local, "input_name", "") or "input")
        self.input_shape = getattr(self.local, "input_shape", None)
        outputs = [str(n) for n in getattr(self.local, "output_names", [])]
        self.router = HiveRouter(settings, bundle.card, outputs, context.period_s).start()
        self.last_route = "local"
        self.last_fields: dict[str, float | int] = {}
        self.remote_frames = 0
        self.fallback_frames = 0

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        routed = self.router.infer(tensor, self.input_name)
        if routed is not None:
            problem = self._malformed(routed.reply.outputs)
            if not problem:
                self.last_route = f"remote:{routed.url}"
                self.last_fields = {"remote_ms": round(routed.latency_ms, 3), "bytes_sent": routed.reply.bytes_sent,
                                    "bytes_received": routed.reply.bytes_received}
                self.remote_frames += 1
                return routed.reply.outputs
            self.router.reject(routed.url, f"malformed outputs: {problem}")
        if self.local is None:
            self.last_route, self.last_fields = "fallback", {}
            raise HiveUnavailable("no hive endpoint answered in time and hive.local_backend is 'none'")
        self.last_route, self.last_fields = "fallback", {}
        self.fallback_frames += 1
        return self.local.run(tensor)

    def _malformed(self, outputs: dict[str, np.ndarray]) -> str:
        """Why these outputs cannot be trusted ('' if they can): the decoder must take them and
        give finite, valid boxes, exactly as for a local model."""
        try:
            decode(outputs, self.card.output, 0.0)
        except (DecodeError, ValueError, KeyError, IndexError, TypeError) as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
        return ""

    def health(self) -> dict[str, Any]:
        state = self.router.health()
        state.update(local=getattr(self.local, "name", None), remote_frames=self.remote_frames,
                     fallback_frames=self.fallback_frames, route=self.last_route)
        return state

    def close(self) -> None:
        self.router.stop()
