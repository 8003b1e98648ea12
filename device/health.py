"""What the device reports of its state, built from its parts (never from the loop): /healthz
(camera, models, remote backends, outbox; `ok` decides 200/503) and the device_status fields."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from device.drift.monitor import DRIFT, OFF, DriftState
from device.drift.stage import drift_state
from device.metrics.points import FieldValue
from device.redact import redact

if TYPE_CHECKING:
    from device.parts import DeviceParts
    from device.pipeline import Pipeline


def _camera(parts: DeviceParts) -> dict[str, Any]:
    cap = parts.capture
    return {"state": cap.state if cap else "failed", "source": redact(cap.source.name if cap else parts.config.source),
            "error": redact(cap.error) if cap else "", "frames": cap.frames if cap else 0,
            "dropped": cap.dropped if cap else 0, "bad_frames": parts.feed.bad_frames, "reconnects": cap.reconnects if cap else 0}


def _backend_state(pipeline: Pipeline) -> dict[str, Any] | None:
    """A backend with a state of its own (a remote one: endpoints, why not remote) reports it."""
    detector = pipeline.slot.detector
    state = getattr(detector.backend, "health", None) if detector else None
    return dict(state()) if callable(state) else None


def pipeline_health(pipeline: Pipeline) -> dict[str, Any]:
    """One model's state; a backend with its own state adds it under `backend_state`."""
    detector = pipeline.slot.detector
    out: dict[str, Any] = {"pipeline": pipeline.name, "loaded": detector is not None,
                           "name": detector.card.name if detector else None,
                           "version": detector.card.version if detector else None,
                           "backend": detector.backend_name if detector else None, "error": pipeline.slot.error,
                           "every": pipeline.options.every, "overlay": pipeline.options.overlay, "failures": pipeline.failures}
    out["tiling"] = detector.tiling_info() if detector is not None else None  # how frames are fitted: scale, tiles
    drift = drift_state(pipeline.stages)
    out["drift"] = drift.as_dict() if drift is not None else None  # docs/drift.md
    state = _backend_state(pipeline)
    if state is not None:
        out["backend_state"] = state
    return out


def _outbox(parts: DeviceParts) -> dict[str, Any]:
    sender = parts.sender
    return {"state": sender.state if sender else "disabled", "error": sender.error if sender else "",
            "store_error": sender.store_error if sender else "",
            "depth": parts.outbox.depth(), "dropped": parts.outbox.dropped(),
            "sent": sender.sent if sender else 0, "write_errors": parts.store.errors,
            "dead_letters": parts.outbox.dead_letters()}  # points InfluxDB refused for good (docs/metrics.md)


def health_report(parts: DeviceParts) -> dict[str, Any]:
    """{'ok', 'camera', 'model' (the main one), 'models' (every pipeline), 'hive', 'outbox'}."""
    pipelines = parts.feed.pipelines
    models = [pipeline_health(p) for p in pipelines]
    main = dict(models[0]) if models else {"loaded": False, "name": None, "version": None, "backend": None, "error": ""}
    model = {"loaded": main["loaded"], "configured": bool(parts.config.model), "name": main["name"],
             "version": main["version"], "backend": main["backend"], "error": main["error"], "tiling": main.get("tiling")}
    remote = {m["pipeline"]: m["backend_state"] for m in models if "backend_state" in m}
    camera = _camera(parts)
    ok = camera["state"] in ("ok", "ended") and (model["loaded"] or not parts.config.model)
    drifting = [m for m in models if m.get("drift") and m["drift"]["alarm"]]
    drift = {"alarm": bool(drifting), "models": {m["pipeline"]: m["drift"] for m in models if m.get("drift")},
             "message": "; ".join(f"{m['pipeline']}: {m['drift']['message']}" for m in drifting)}
    return {"ok": ok, "camera": camera, "model": model, "models": models,
            "hive": {"configured": bool(remote), "models": remote}, "outbox": _outbox(parts), "drift": drift,
            "inbox": parts.inbox.status() if parts.inbox is not None else None}


def source_state(parts: DeviceParts) -> str:
    state = parts.capture.state if parts.capture else "failed"
    return {"starting": "reconnecting", "ended": "ok"}.get(state, state)


def backend_fields(parts: DeviceParts) -> dict[str, FieldValue]:
    """The main model's backend's own heartbeat fields (a remote backend: where it runs, how fast,
    how often it fell back): any backend may fill `status_fields()`."""
    detector = parts.feed.detector
    hook = getattr(detector.backend, "status_fields", None) if detector is not None else None
    return dict(hook()) if callable(hook) else {}


def drift_fields(pipeline: Pipeline | None) -> dict[str, FieldValue]:
    """The main model's drift state as heartbeat fields (docs/metrics.md): the alarm as 0/1 for
    Grafana's alert rule, the state word, the sentence, and the statistics the panel plots."""
    state = drift_state(pipeline.stages) if pipeline is not None else None
    state = state or DriftState(OFF)
    fields: dict[str, FieldValue] = {"drift_alarm": int(state.state == DRIFT), "drift_state": state.state,
                                     "drift_message": state.message}
    fields.update({f"drift_{name}": round(value, 4) for name, value in state.stats.items()})
    return fields


def status_fields(parts: DeviceParts) -> dict[str, FieldValue]:
    """The device_status point's fields."""
    detector, feed = parts.feed.detector, parts.feed
    tracking = parts.tracking()
    return {
        "model": detector.card.name if detector else "",
        "model_version": detector.card.version if detector else "",
        "backend": detector.backend_name if detector else "",
        "models": len([p for p in feed.pipelines if p.slot.detector is not None]),
        "source_state": source_state(parts),
        "fps": round(parts.board.fps.fps, 3),
        "outbox_depth": parts.outbox.depth(),
        "outbox_dropped": parts.outbox.dropped(),
        "outbox_dead_letters": parts.outbox.dead_letters(),
        "uptime_s": round(time.time() - parts.started, 3),
        "run_id": parts.run_id,
        **(tracking.heartbeat_fields() if tracking is not None else {}),
        **backend_fields(parts),
        **drift_fields(feed.pipelines[0] if feed.pipelines else None),
        **({f"inbox_{k}": v for k, v in parts.inbox.status().items()} if parts.inbox is not None else {}),
    }
