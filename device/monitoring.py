"""The model's self-checks, changed while the device runs: drift alarm and review inbox settings
(the panel's `/panel/api/model-checks`; docs/drift.md, docs/inbox.md).

A change is validated whole, with the same bounds as the config loader, before anything is applied:
a refused change changes nothing. Drift windows restart with new settings (a model's alarm is
judged over frames of one set of thresholds); the inbox keeps its frames and applies new caps at
once (evicting, oldest spot check first, when they shrink). Changes are kept in
`data_dir/model_checks.json` and win over the config at the next start (the log says so; delete
the file to go back to the config)."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from pydantic import BaseModel, ValidationError

from device.config import DeviceConfig
from device.drift.settings import DriftSettings
from device.drift.stage import DriftStage
from device.field_errors import readable
from device.inbox.settings import InboxSettings
from device.parts import DeviceParts

log = logging.getLogger(__name__)
SAVED = "model_checks.json"

SECTIONS: dict[str, type[BaseModel]] = {"drift": DriftSettings, "inbox": InboxSettings}


class MonitoringError(ValueError):
    """A change that cannot be made; the message says why (nothing was changed)."""


def monitoring_settings(parts: DeviceParts) -> dict[str, Any]:
    return {name: getattr(parts.config, name).model_dump(mode="json") for name in SECTIONS}


def validated(parts: DeviceParts, changes: dict[str, Any]) -> dict[str, BaseModel]:
    """The new settings of each section named in `changes` (MonitoringError, saying which and why: none)."""
    unknown = sorted(set(changes) - set(SECTIONS))
    if unknown:
        raise MonitoringError(f"'{unknown[0]}' is not a section here: send {{\"drift\": {{...}}, \"inbox\": {{...}}}}")
    out: dict[str, BaseModel] = {}
    for name, section in changes.items():
        if not isinstance(section, dict):
            raise MonitoringError(f"'{name}' must be an object of settings, e.g. {{\"window_frames\": 300}}")
        current = getattr(parts.config, name).model_dump()
        try:
            out[name] = SECTIONS[name].model_validate({**current, **section}, strict=True)
        except ValidationError as exc:
            raise MonitoringError(f"{name}: {readable(exc, SECTIONS[name])}") from exc
    if "inbox" in out and parts.inbox is None and getattr(out["inbox"], "enabled", False):
        raise MonitoringError("the review inbox was switched off when the device started: set inbox.enabled in its "
                              "config (SCOPEHIVE_INBOX__ENABLED=true) and restart it")
    return out


def configure_monitoring(parts: DeviceParts, changes: dict[str, Any]) -> dict[str, Any]:
    """Validate, keep for the next start, then apply to the config (models started later), every
    pipeline's drift stage and the inbox."""
    new = validated(parts, changes)
    _save(parts.config, new)
    if "drift" in new:
        drift = new["drift"]
        assert isinstance(drift, DriftSettings)
        parts.config.drift = drift
        for pipeline in parts.feed.pipelines:
            for stage in pipeline.stages:
                if isinstance(stage, DriftStage):
                    stage.configure(drift)
    if "inbox" in new:
        inbox = new["inbox"]
        assert isinstance(inbox, InboxSettings)
        parts.config.inbox = inbox
        if parts.inbox is not None:
            parts.inbox.configure(inbox)
    return monitoring_settings(parts)


def _save(config: DeviceConfig, new: dict[str, BaseModel]) -> None:
    """Both sections as they will be, in data_dir/model_checks.json (MonitoringError: not written, nothing changes)."""
    path = config.data_dir / SAVED
    kept = {name: (new.get(name) or getattr(config, name)).model_dump(mode="json") for name in SECTIONS}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(kept, indent=2))
        os.replace(tmp, path)
    except OSError as exc:
        raise MonitoringError(f"the settings cannot be kept in {path} ({exc.strerror or exc}): is the disk full or "
                              "read-only?") from exc


def apply_saved(config: DeviceConfig) -> DeviceConfig:
    """The panel's saved changes over the config (a file that no longer validates is reported and ignored)."""
    path = config.data_dir / SAVED
    if not path.exists():
        return config
    try:
        saved = json.loads(path.read_text())
        sections = {name: SECTIONS[name].model_validate(saved[name]) for name in SECTIONS if name in saved}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("%s cannot be used (%s): the config's drift and inbox settings apply", path, exc)
        return config
    log.warning("drift and inbox settings changed in the panel (%s) override the config; delete it to use the config's", path)
    return config.model_copy(update=sections)
