"""What /healthz reports: camera, models (one entry per pipeline), outbox; `ok` decides 200/503."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from device.hive.status import hive_health
from device.redact import redact

if TYPE_CHECKING:
    from device.pipeline import Pipeline
    from device.runtime import Runtime


def _camera(rt: Runtime) -> dict[str, Any]:
    cap = rt.capture
    return {"state": cap.state if cap else "failed", "source": redact(cap.source.name if cap else rt.config.source),
            "error": redact(cap.error) if cap else "", "frames": cap.frames if cap else 0,
            "dropped": cap.dropped if cap else 0, "bad_frames": rt.bad_frames, "reconnects": cap.reconnects if cap else 0}


def pipeline_health(pipeline: Pipeline) -> dict[str, Any]:
    """One model's state; a backend with its own state (a remote one) adds it under `backend_state`."""
    detector = pipeline.slot.detector
    out: dict[str, Any] = {"pipeline": pipeline.name, "loaded": detector is not None,
                           "name": detector.card.name if detector else None,
                           "version": detector.card.version if detector else None,
                           "backend": detector.backend_name if detector else None, "error": pipeline.slot.error,
                           "every": pipeline.options.every, "overlay": pipeline.options.overlay, "failures": pipeline.failures}
    tiling = getattr(detector, "tiling_info", None)  # how frames are fitted: scale, tiles per frame
    out["tiling"] = tiling() if callable(tiling) else None
    state = getattr(detector.backend, "health", None) if detector else None
    if callable(state):
        out["backend_state"] = state()
    return out


def _outbox(rt: Runtime) -> dict[str, Any]:
    return {"state": rt.sender.state if rt.sender else "disabled", "error": rt.sender.error if rt.sender else "",
            "store_error": rt.sender.store_error if rt.sender else "",
            "depth": rt.outbox.depth() if rt.outbox else 0, "dropped": rt.outbox.dropped() if rt.outbox else 0,
            "sent": rt.sender.sent if rt.sender else 0, "write_errors": rt.store_errors}


def health_report(rt: Runtime) -> dict[str, Any]:
    """{'ok', 'camera', 'model' (the main one, as before), 'models' (every pipeline), 'outbox'}."""
    pipelines = rt.pipelines
    models = [pipeline_health(p) for p in pipelines]
    main = dict(models[0]) if models else {"loaded": False, "name": None, "version": None, "backend": None, "error": ""}
    main.pop("pipeline", None)
    model = {"loaded": main["loaded"], "configured": bool(rt.config.model), "name": main["name"],
             "version": main["version"], "backend": main["backend"], "error": main["error"], "tiling": main.get("tiling")}
    camera = _camera(rt)
    ok = camera["state"] in ("ok", "ended") and (model["loaded"] or not rt.config.model)
    return {"ok": ok, "camera": camera, "model": model, "models": models, "hive": hive_health(pipelines), "outbox": _outbox(rt)}
