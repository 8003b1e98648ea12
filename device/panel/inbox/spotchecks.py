"""Spot checks of the review inbox, as count QC sees them: each reviewed spot check is a project
image that remembers what every model on the feed counted; its annotation is the person's count.

The person's count is read when QC is computed, so a spot check fixed in the annotator after
"Fix" counts as fixed. Only classes both the model and the project have are compared."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any

from device.inbox.qc import Agreement, SpotPair, agreements
from device.inbox.reasons import SPOT
from device.panel.records import Project, SpotCheck, SpotModel
from device.panel.store import ProjectStore


def inbox_of(device: Any) -> Any:
    """The running device's review inbox (device.inbox.watch.Inbox), None without a device or inbox."""
    inbox = getattr(device, "inbox", None)
    return inbox() if callable(inbox) else None


def spot_check_of(record: dict[str, Any]) -> SpotCheck | None:
    """The spot check an inbox record makes when reviewed (None: the frame was not a random draw)."""
    if SPOT not in [r.get("kind") for r in record.get("reasons", [])]:
        return None
    models = []
    for m in record.get("models", []):
        names = [str(c) for c in m.get("classes", [])]
        counted = Counter(names[c] for c in m.get("class_ids", []) if 0 <= c < len(names))
        models.append(SpotModel(pipeline=str(m.get("pipeline")), name=str(m.get("name") or "unknown"),
                                version=str(m.get("version") or ""), counts={n: counted.get(n, 0) for n in names}))
    kept = datetime.fromtimestamp(float(record.get("created", 0.0)), timezone.utc)
    return SpotCheck(inbox_id=str(record.get("id", "")), kept_at=kept, models=models)


def spot_pairs(projects: ProjectStore, project: Project) -> list[SpotPair]:
    """Every (model, class) count pair of the project's reviewed spot checks."""
    pairs = []
    names = {c.id: c.name for c in project.classes}
    for meta in projects.list_images(project.slug):
        if meta.spot_check is None:
            continue
        boxes = projects.annotation(project.slug, meta.id).boxes
        human = Counter(names.get(b.class_id) for b in boxes)
        for model in meta.spot_check.models:
            label = f"{model.name}:{model.version}"
            for cls in (c for c in model.counts if c in project.class_names):
                pairs.append(SpotPair(label, cls, model.counts[cls], human.get(cls, 0), meta.id))
    return pairs


def project_qc(projects: ProjectStore, project: Project) -> dict[str, list[Agreement]]:
    """Model label -> agreement per class (and over all classes) from the project's spot checks."""
    return agreements(spot_pairs(projects, project))


def publish_qc(inbox: Any, projects: ProjectStore, project: Project, spot: SpotCheck) -> int:
    """Write the running agreement of the spot check's models as `count_qc` points; returns how many."""
    if inbox is None:
        return 0
    table = project_qc(projects, project)
    written = 0
    for model in {(m.name, m.version) for m in spot.models}:
        rows = table.get(f"{model[0]}:{model[1]}")
        if rows:
            written += inbox.write_qc(model[0], model[1], rows)
    return written
