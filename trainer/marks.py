"""The trainer service's jobs as Grafana annotations: a point when one starts, the training's span
with its mAP and verdict when it ends with a model, a point saying why when it ends without one.

Grafana is optional (GRAFANA_URL unset: no marks) and never holds a job up: a failed mark is
logged and the job goes on. The texts and tags are grafana/annotations.py's, which every
ScopeHive dashboard queries.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from typing import Any

from trainer.jobs import Job

log = logging.getLogger(__name__)


def _when(epoch_s: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch_s, timezone.utc) if epoch_s else None


class TrainingMarks:
    def __init__(self, settings: Any | None) -> None:
        self.settings: Any = settings  # grafana.annotations.GrafanaSettings, or None: no Grafana

    @classmethod
    def from_env(cls) -> TrainingMarks:
        if not os.environ.get("GRAFANA_URL", "").strip():
            return cls(None)
        try:
            from grafana.annotations import AnnotationError, settings_from_env
        except ImportError as exc:
            log.warning("GRAFANA_URL is set but grafana/ cannot be imported (%s): no training annotations", exc)
            return cls(None)
        try:
            return cls(settings_from_env())
        except AnnotationError as exc:
            log.warning("no training annotations: %s", exc)
            return cls(None)

    def _post(self, what: str, call: Any) -> None:
        if self.settings is None:
            return
        try:
            call()
        except Exception as exc:  # a mark is a courtesy: the job's outcome never depends on Grafana
            log.warning("no Grafana annotation for %s (%s: %s)", what, type(exc).__name__, exc)

    def started(self, job: Job) -> None:
        from grafana.annotations import mark_training_event

        text = f"Training started: project {job.project} (device {job.device}, job {job.id}), {job.plan.get('images', '?')} images"
        self._post(f"job {job.id} start", lambda: mark_training_event(self.settings, job.project, job.device, text, _when(job.started)))

    def ended(self, job: Job) -> None:
        from grafana.annotations import TrainingRun, mark_training, mark_training_event

        result = job.result or {}
        if job.state != "done" or not result.get("model"):
            text = f"Training {job.state}: project {job.project} (device {job.device}, job {job.id}): {job.message}"
            self._post(f"job {job.id} end", lambda: mark_training_event(self.settings, job.project, job.device, text, _when(job.finished)))
            return
        validation = result.get("validation") or {}
        comparison = result.get("comparison")
        from trainer.compare import describe

        verdict = describe(comparison) if comparison else (result.get("comparison_note") or None)
        run = TrainingRun(project=job.project, model=result["model"]["name"], version=result["model"]["version"],
                          map50=float(validation.get("map50") or 0.0), map50_95=validation.get("map50_95"),
                          started=_when(job.started), finished=_when(job.finished), device=job.device, verdict=verdict)
        self._post(f"job {job.id} end", lambda: mark_training(self.settings, run))
