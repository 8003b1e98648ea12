"""The hive's share of the heartbeat (device_status) and of /healthz: which server this device
uses, how fast it answers, and how often frames fell back to the local model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from device.metrics.points import FieldValue
    from device.pipeline import Pipeline


def remote_backend(pipeline: Pipeline) -> Any | None:
    """The pipeline's TritonBackend, or None when it runs locally."""
    detector = pipeline.slot.detector
    backend = detector.backend if detector is not None else None
    return backend if backend is not None and getattr(backend, "name", "") == "triton" else None


class HiveHeartbeat:
    """Fields for device_status from the main model's remote backend; the fallback rate is the
    share of its frames that ran locally since the previous heartbeat."""

    def __init__(self) -> None:
        self._last = (0, 0)

    def fields(self, pipelines: tuple[Pipeline, ...]) -> dict[str, FieldValue]:
        backend = remote_backend(pipelines[0]) if pipelines else None
        if backend is None:
            return {}
        remote, fallback = backend.remote_frames, backend.fallback_frames
        d_remote, d_fallback = remote - self._last[0], fallback - self._last[1]
        self._last = (remote, fallback)
        route = str(backend.last_route)
        endpoint = route.removeprefix("remote:") if route.startswith("remote:") else ""
        out: dict[str, FieldValue] = {"hive_endpoint": endpoint, "hive_state": "remote" if endpoint else "fallback",
                                      "hive_remote_frames": remote, "hive_fallback_frames": fallback}
        if d_remote + d_fallback:
            out["hive_fallback_rate"] = round(d_fallback / (d_remote + d_fallback), 4)
        state = backend.router.states.get(endpoint) if endpoint else None
        if state is not None and state.latency_ms is not None:
            out["hive_remote_ms"] = round(float(state.latency_ms), 3)
        return out


def hive_health(pipelines: tuple[Pipeline, ...]) -> dict[str, Any]:
    """/healthz `hive`: per model on a remote backend, where it runs now and why not remotely."""
    models = {}
    for pipeline in pipelines:
        backend = remote_backend(pipeline)
        if backend is not None:
            models[pipeline.name] = backend.health()
    return {"configured": bool(models), "models": models}
