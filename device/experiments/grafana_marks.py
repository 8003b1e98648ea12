"""Experiment start/stop as Grafana annotations, written with grafana-client like the trainer's
rollout marks (grafana/annotations.py). The device image does not ship grafana/, so the few lines
live here; the tags are the ones the dashboards query (tests check they match grafana/tags.py).
"""

from __future__ import annotations

import logging
import os
import threading

from pydantic import BaseModel, ConfigDict, Field

from device.experiments.store import Experiment

log = logging.getLogger(__name__)
TAG_APP = "scopehive"
TAG_EXPERIMENT = "experiment"


class GrafanaMarkSettings(BaseModel):
    """Where to mark experiments; an empty url means no annotations (the device_event is always written)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field("", description="Grafana base URL for experiment annotations, e.g. http://grafana:3000; empty = none")
    token_env: str = Field("SCOPEHIVE_GRAFANA_TOKEN", description="Environment variable holding a service-account token (annotations:write)")
    timeout_s: float = Field(5.0, gt=0, le=60, description="HTTP timeout of one annotation")


def annotation(experiment: Experiment, which: str) -> tuple[str, list[str], int, int | None]:
    """(text, tags, time_from ms, time_to ms): a point at the start, the whole span at the stop."""
    req = experiment.request
    details = ", ".join(f"{k} {v}" for k, v in (("sample", req.sample), ("objective", req.objective),
                                                  ("operator", req.operator)) if v)
    text = f"Experiment {which}: {req.name} ({experiment.id})" + (f"; {details}" if details else "")
    tags = [TAG_APP, TAG_EXPERIMENT, f"experiment:{experiment.id}", f"device:{experiment.device}", f"project:{experiment.project}"]
    start_ms = int(experiment.started * 1000)
    if which == "stopped" and experiment.stopped is not None:
        return text, tags, start_ms, int(experiment.stopped * 1000)
    return text, tags, start_ms, None


def post(settings: GrafanaMarkSettings, experiment: Experiment, which: str) -> int:
    """POST the annotation; returns its id. Raises on any failure (the caller logs)."""
    from grafana_client import GrafanaApi

    text, tags, start, end = annotation(experiment, which)
    token = os.environ.get(settings.token_env) or None
    api = GrafanaApi.from_url(settings.url, credential=token, timeout=settings.timeout_s)
    response = api.annotations.add_annotation(time_from=start, time_to=end, tags=tags, text=text)
    if not isinstance(response, dict) or not isinstance(response.get("id"), int):
        raise RuntimeError(f"Grafana at {settings.url} answered {response!r}, not an annotation id")
    return int(response["id"])


def mark_in_background(settings: GrafanaMarkSettings, experiment: Experiment, which: str) -> threading.Thread | None:
    """Post on a thread so a slow or absent Grafana never holds up the device; failures are logged."""
    if not settings.url:
        return None

    def _post() -> None:
        try:
            post(settings, experiment, which)
        except Exception as exc:  # Grafana down, wrong token, not Grafana: log it, the event is in InfluxDB anyway
            log.warning("experiment %s %s: no Grafana annotation (%s: %s)", experiment.id, which, type(exc).__name__, exc)

    thread = threading.Thread(target=_post, name="grafana-mark", daemon=True)
    thread.start()
    return thread
