"""Remote inference on a hive GPU server (Triton, KServe v2): one more backend in the registry.

Frames go to the best ready endpoint within the per-frame deadline; when the hive is slow, gone,
serves another model version or answers with anything the bundle's own graph could not have
answered (device/inference/remote_outputs.py), the same frame runs on the local fallback backend
(`last_route = "fallback"`) and /healthz says why. The fallback is built by the registry and
handed in (`BackendContext.fallback`); with none, such a frame raises HiveUnavailable and is not
analysed. The device never records a frame the hive did not answer as "zero objects".
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from device.hive.client import ServedModel
from device.hive.router import HiveRouter, HiveUnavailable
from device.inference.base import Backend, BackendContext
from device.inference.onnx_graph import GraphError, GraphIO, read_graph_io
from device.inference.preprocess import denormalize
from device.inference.remote_outputs import OutputContract
from device.models.bundle import BundleError, ModelBundle

__all__ = ["HiveUnavailable", "TritonBackend"]
log = logging.getLogger(__name__)
StatusValue = int | float | str | bool


def _graph(bundle: ModelBundle) -> GraphIO:
    try:
        return read_graph_io(bundle.onnx_path)
    except (GraphError, OSError) as exc:
        raise BundleError(f"{bundle.onnx_path}: cannot read the model's inputs and outputs ({exc}); re-export the bundle") from exc


class TritonBackend:
    """Backend protocol over a HiveRouter, with the injected local backend as fallback."""

    name = "triton"

    def __init__(self, bundle: ModelBundle, cache_dir: Path, context: BackendContext | None = None) -> None:
        if context is None or not context.hive.endpoints:
            raise BundleError("backend 'triton' needs hive.endpoints (the KServe v2 HTTP URLs of hive servers)")
        self.card = bundle.card
        self.local: Backend | None = context.fallback
        graph = _graph(bundle)
        names = [i.name for i in graph.inputs]
        wanted = bundle.card.input.name
        if wanted and wanted not in names:
            raise BundleError(f"{bundle.root / 'model.json'}: input.name '{wanted}' is not an input of model.onnx (it has {names})")
        # the same default as a local backend: the graph's first input
        self.input_name: str = wanted or names[0]
        self.input_shape = next(i.shape for i in graph.inputs if i.name == self.input_name)
        self.output_names = [o.name for o in graph.outputs]
        self.contract = OutputContract(graph.outputs, bundle.card)
        self.transport = context.hive.transport
        served = ServedModel(bundle.card, self.transport, tuple(self.output_names), self.contract.max_reply_bytes)
        self.router = HiveRouter(context.hive, served, context.period_s).start()
        self.last_route = "local"
        self.last_fields: dict[str, float | int] = {}
        self.remote_frames = 0
        self.fallback_frames = 0
        self.unanswered_frames = 0  # no endpoint answered and no local model: not analysed
        self.fallback_reason = ""  # why the last frame that did not run remotely did not
        self._status_seen = (0, 0)

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        data = denormalize(tensor, self.card.input, self.card.normalization) if self.transport == "jpeg" else tensor
        routed = self.router.infer(data, self.input_name)
        if routed is not None:
            problem = self.contract.problem(routed.reply.outputs)
            if not problem:
                self.last_route = f"remote:{routed.url}"
                self.last_fields = {"remote_ms": round(routed.latency_ms, 3), "bytes_sent": routed.reply.bytes_sent,
                                    "bytes_received": routed.reply.bytes_received}
                self.remote_frames += 1
                return {name: routed.reply.outputs[name] for name in self.output_names}  # the graph's order
            self.router.reject(routed.url, f"malformed outputs: {problem}")
        self.fallback_reason = self.router.why_not()
        self.last_route, self.last_fields = "fallback", {}
        if self.local is None:
            self.unanswered_frames += 1
            raise HiveUnavailable(f"no hive endpoint answered ({self.fallback_reason[:400]}) and hive.local_backend is 'none'")
        self.fallback_frames += 1
        return self.local.run(tensor)

    def health(self) -> dict[str, Any]:
        state = self.router.health()
        state.update(local=getattr(self.local, "name", None), remote_frames=self.remote_frames,
                     fallback_frames=self.fallback_frames, unanswered_frames=self.unanswered_frames,
                     route=self.last_route, fallback_reason=self.fallback_reason)
        return state

    def status_fields(self) -> dict[str, StatusValue]:
        """This backend's share of the heartbeat (device_status): the server the frames go to
        now, how fast it answers, and the share of frames that ran locally since the last call."""
        remote, fallback = self.remote_frames, self.fallback_frames
        d_remote, d_fallback = remote - self._status_seen[0], fallback - self._status_seen[1]
        self._status_seen = (remote, fallback)
        endpoint = self.last_route.removeprefix("remote:") if self.last_route.startswith("remote:") else ""
        fields: dict[str, StatusValue] = {"hive_endpoint": endpoint, "hive_state": "remote" if endpoint else "fallback",
                                          "hive_remote_frames": remote, "hive_fallback_frames": fallback}
        if d_remote + d_fallback:
            fields["hive_fallback_rate"] = round(d_fallback / (d_remote + d_fallback), 4)
        state = self.router.states.get(endpoint) if endpoint else None
        if state is not None and state.latency_ms is not None:
            fields["hive_remote_ms"] = round(float(state.latency_ms), 3)
        return fields

    def close(self) -> None:
        self.router.stop()
