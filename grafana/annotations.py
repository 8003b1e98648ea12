"""Mark model rollouts and training runs on the ScopeHive dashboards, as Grafana annotations.

The annotations are organisation-wide (no dashboard uid) and tagged `scopehive` plus `rollout` or
`training`: every ScopeHive dashboard queries those tags (grafana/common.py), so one call shows
the event everywhere. Further tags (`fleet:`, `model:`, `version:`, `device:`, `project:`) let a
user filter in Grafana. Callers (the trainer, the fleet rollout) get the new annotation's id, or
an AnnotationError saying what to fix; an unset GRAFANA_URL means "no Grafana": `settings_from_env`
returns None and callers skip marking.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

import requests
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaException, GrafanaUnauthorizedError
from pydantic import BaseModel, ConfigDict, Field

from grafana.tags import TAG_APP, TAG_ROLLOUT, TAG_TRAINING


class AnnotationError(RuntimeError):
    """Grafana could not be reached or refused the annotation; the message says what to check."""


class GrafanaSettings(BaseModel):
    """Where Grafana is and how to log in: a service-account token, or a user and password."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Grafana base URL, e.g. http://grafana:3000 (GRAFANA_URL)")
    token: str | None = Field(None, description="Service account token with annotation rights (GRAFANA_TOKEN)")
    user: str | None = Field(None, description="User for basic auth when no token is set (GRAFANA_USER)")
    password: str | None = Field(None, description="Password for GRAFANA_USER (GRAFANA_PASSWORD)")
    timeout_s: float = Field(5.0, gt=0, le=120, description="HTTP timeout of one request")


def settings_from_env(environ: Mapping[str, str] | None = None) -> GrafanaSettings | None:
    """GRAFANA_URL + GRAFANA_TOKEN (or GRAFANA_USER/GRAFANA_PASSWORD); None when GRAFANA_URL is unset."""
    env = os.environ if environ is None else environ
    url = env.get("GRAFANA_URL", "").strip()
    if not url:
        return None
    token = env.get("GRAFANA_TOKEN") or None
    user, password = env.get("GRAFANA_USER") or None, env.get("GRAFANA_PASSWORD") or None
    if token is None and (user is None or password is None):
        raise AnnotationError(
            "GRAFANA_URL is set but no credentials: set GRAFANA_TOKEN (a service account token with "
            "annotations:write) or both GRAFANA_USER and GRAFANA_PASSWORD"
        )
    return GrafanaSettings(url=url, token=token, user=user, password=password)


def _client(settings: GrafanaSettings) -> GrafanaApi:
    credential: str | tuple[str, str] | None = settings.token
    if credential is None and settings.user and settings.password:
        credential = (settings.user, settings.password)
    return GrafanaApi.from_url(settings.url, credential=credential, timeout=settings.timeout_s)


def _epoch_ms(when: datetime | None) -> int:
    moment = when or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        raise AnnotationError(f"time {moment.isoformat()} has no time zone: pass an aware datetime (e.g. UTC)")
    return int(moment.timestamp() * 1000)


def add(settings: GrafanaSettings, text: str, tags: Sequence[str], start: datetime | None = None, end: datetime | None = None) -> int:
    """POST one annotation (a point, or a region when `end` is given); returns its id."""
    try:
        response = _client(settings).annotations.add_annotation(
            time_from=_epoch_ms(start), time_to=_epoch_ms(end) if end else None, tags=list(tags), text=text
        )
    except GrafanaUnauthorizedError as exc:
        raise AnnotationError(f"Grafana at {settings.url} refused the credentials: check GRAFANA_TOKEN (or GRAFANA_USER/GRAFANA_PASSWORD)") from exc
    except GrafanaException as exc:
        raise AnnotationError(f"Grafana at {settings.url} rejected the annotation: {exc}") from exc
    except requests.RequestException as exc:
        raise AnnotationError(f"cannot reach Grafana at {settings.url} ({exc.__class__.__name__}): check GRAFANA_URL") from exc
    if not isinstance(response, dict) or not isinstance(response.get("id"), int):
        raise AnnotationError(f"Grafana at {settings.url} answered {response!r}, not an annotation id: is GRAFANA_URL really Grafana?")
    return int(response["id"])


def mark_rollout(settings: GrafanaSettings, fleet: str, model: str, version: str, devices: Sequence[str] = ()) -> int:
    """A model version deployed to a fleet (all devices when `devices` is empty, else those)."""
    target = f"{len(devices)} device(s): {', '.join(devices)}" if devices else "every device"
    text = f"Model {model} {version} rolled out to fleet {fleet}, {target}"
    tags = [TAG_APP, TAG_ROLLOUT, f"fleet:{fleet}", f"model:{model}", f"version:{version}", *(f"device:{d}" for d in devices)]
    return add(settings, text, tags)


class TrainingRun(BaseModel):
    """What the trainer reports when a run ends."""

    model_config = ConfigDict(extra="forbid")

    project: str = Field(description="Project the dataset came from")
    model: str = Field(description="Model name (ModelCard.name)")
    version: str = Field(description="Model version (ModelCard.version)")
    map50: float = Field(ge=0, le=1, description="mAP at IoU 0.5 on the validation split")
    map50_95: float | None = Field(None, ge=0, le=1, description="COCO mAP@[.5:.95], when computed")
    started: datetime | None = Field(None, description="Start of training (aware); the annotation spans start..end")
    finished: datetime | None = Field(None, description="End of training (aware); default now")
    device: str | None = Field(None, description="Device that asked for the training (the trainer service's jobs)")
    verdict: str | None = Field(None, description="Against the running model on the held-out frames, in words")


def mark_training(settings: GrafanaSettings, run: TrainingRun) -> int:
    """A training run finished: a region from start to end when the start is known, with its mAP."""
    score = f"mAP@0.5 {run.map50:.3f}" + (f", mAP@[.5:.95] {run.map50_95:.3f}" if run.map50_95 is not None else "")
    where = f"project {run.project}" + (f", device {run.device}" if run.device else "")
    text = f"Training finished: {run.model} {run.version} ({where}), {score}" + (f"; {run.verdict}" if run.verdict else "")
    tags = [TAG_APP, TAG_TRAINING, f"project:{run.project}", f"model:{run.model}", f"version:{run.version}",
            *([f"device:{run.device}"] if run.device else [])]
    if run.started is None:
        return add(settings, text, tags, start=run.finished)
    return add(settings, text, tags, start=run.started, end=run.finished or datetime.now(timezone.utc))


def mark_training_event(settings: GrafanaSettings, project: str, device: str, text: str, when: datetime | None = None) -> int:
    """A point on the dashboards for a training job's start, or an end without a model (failed, cancelled, interrupted)."""
    return add(settings, text, [TAG_APP, TAG_TRAINING, f"project:{project}", f"device:{device}"], start=when)

