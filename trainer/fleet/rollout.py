"""Rolling a published model out to the fleet, canary first, and rolling it back.

A stage assigns the model (a device tag) and then waits until every online device of the stage
answers with `scopehive.model.running = name:version` (switched) or `scopehive.model.error`
(rejected, old model still running). A canary that fails or times out stops the rollout before
the rest of the fleet is touched. Offline devices are assigned but not waited for: they switch
when they come back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from trainer.fleet.balena_api import (
    ASSIGN_TAG,
    ERROR_TAG,
    RUNNING_TAG,
    BalenaFleet,
    FleetDevice,
    FleetError,
)
from trainer.fleet.history import HistoryStore, RolloutRecord


class RolloutPlan(BaseModel):
    """Who gets which model, and how patiently we wait for them."""

    model_config = ConfigDict(extra="forbid")

    model_ref: str = Field(pattern=r"^[^:\s]+:[^:\s]+$", description="name:version of a published bundle")
    device_type: str | None = Field(None, description="Only devices of this balena device type")
    devices: list[str] = Field(default_factory=list, description="Only these device uuids (prefixes ok)")
    canary: int = Field(1, ge=0, description="Devices switched and checked before the rest")
    wait_s: float = Field(600.0, ge=0, description="How long one stage may take; 0 = don't wait")
    poll_s: float = Field(5.0, gt=0, description="How often device answers are read")
    fleet_default: bool = Field(False, description="Also set the fleet variable (restarts every device once)")


@dataclass
class StageResult:
    devices: list[str] = field(default_factory=list)
    switched: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    offline: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.pending


@dataclass
class RolloutResult:
    record_id: int
    model_ref: str
    stages: list[tuple[str, StageResult]]

    @property
    def ok(self) -> bool:
        return all(stage.ok for _, stage in self.stages)

    def summary(self) -> str:
        lines = [f"rollout #{self.record_id} of {self.model_ref}: {'ok' if self.ok else 'FAILED'}"]
        for name, stage in self.stages:
            label = name or "assignment removed"
            lines.append(f"  {label}: {len(stage.switched)}/{len(stage.devices)} switched")
            lines += [f"    {uuid[:7]} rejected it: {why}" for uuid, why in stage.failed.items()]
            lines += [f"    {uuid[:7]} did not answer in time" for uuid in stage.pending]
            lines += [f"    {uuid[:7]} is offline: it switches when it comes back" for uuid in stage.offline]
        return "\n".join(lines)


Sleep = Callable[[float], None]


def wait_for(fleet: BalenaFleet, devices: list[FleetDevice], target: str | None, plan: RolloutPlan,
             sleep: Sleep = time.sleep) -> StageResult:
    """Poll device tags until every online device runs `target` or reports an error for it.

    target None (assignment removed) has no version to wait for: such devices are not waited on.
    """
    result = StageResult(devices=[d.uuid for d in devices], offline=[d.uuid for d in devices if not d.is_online])
    if target is None:
        return result
    waiting = [d for d in devices if d.is_online]
    deadline = time.monotonic() + plan.wait_s
    while waiting and plan.wait_s > 0:
        for device in list(waiting):
            tags = fleet.tags(device)
            error = tags.get(ERROR_TAG, "")
            if tags.get(RUNNING_TAG) == target:
                result.switched.append(device.uuid)
                waiting.remove(device)
            elif error.startswith(target + " "):
                result.failed[device.uuid] = error[len(target) + 1 :]
                waiting.remove(device)
        if waiting and time.monotonic() < deadline:
            sleep(plan.poll_s)
        elif waiting:
            break
    result.pending = [d.uuid for d in waiting] if plan.wait_s > 0 else []
    return result


def _current(tags: dict[str, str]) -> str | None:
    return tags.get(ASSIGN_TAG) or tags.get(RUNNING_TAG)


def _split(devices: list[FleetDevice], canary: int) -> tuple[list[FleetDevice], list[FleetDevice]]:
    """Canaries are online devices, in a stable order, so the first stage really tells us something."""
    ordered = sorted(devices, key=lambda d: (not d.is_online, d.name, d.uuid))
    return ordered[:canary], ordered[canary:]


def rollout(fleet: BalenaFleet, history: HistoryStore, plan: RolloutPlan, sleep: Sleep = time.sleep) -> RolloutResult:
    """Assign `plan.model_ref` to the chosen devices: canary stage, check, then the rest."""
    devices = fleet.devices(plan.device_type, plan.devices or None)
    if not devices:
        raise FleetError(
            f"no devices in fleet '{fleet.fleet}'" + (f" of type '{plan.device_type}'" if plan.device_type else "")
            + ": nothing to roll out to (check --fleet and --device-type)"
        )
    # What each device runs now: its assignment, else what it reported running (its own config).
    previous = {d.uuid: _current(fleet.tags(d)) for d in devices}
    record = history.begin(plan.model_ref, plan.device_type, previous)
    stages: list[tuple[str, StageResult]] = []
    canary, rest = _split(devices, plan.canary)
    for name, group in (("canary", canary), ("rest", rest)):
        if not group:
            continue
        history.update(record.id, "canary" if name == "canary" else "rolling")
        for device in group:
            fleet.assign(device, plan.model_ref)
        stage = wait_for(fleet, group, plan.model_ref, plan, sleep)
        stages.append((name, stage))
        if not stage.ok:
            history.update(record.id, "failed", f"{name} stage failed; run `python -m trainer rollback`")
            return RolloutResult(record.id, plan.model_ref, stages)
    if plan.fleet_default:
        fleet.set_fleet_default(plan.model_ref)
    history.update(record.id, "done")
    return RolloutResult(record.id, plan.model_ref, stages)


def rollback(fleet: BalenaFleet, history: HistoryStore, plan: RolloutPlan, sleep: Sleep = time.sleep) -> RolloutResult:
    """Undo the newest rollout: every device it touched gets its previous assignment back.

    One stage per restored model, named by its name:version ("" = assignment removed)."""
    record = history.last_undoable()
    if record is None:
        raise FleetError(f"fleet '{fleet.fleet}' has no rollout to undo (history: {history.key})")
    devices = [d for d in fleet.devices() if d.uuid in record.previous]
    by_target: dict[str | None, list[FleetDevice]] = {}
    for device in devices:
        by_target.setdefault(record.previous[device.uuid], []).append(device)
    stages: list[tuple[str, StageResult]] = []
    for target, group in by_target.items():
        for device in group:
            if target is None:
                fleet.unassign(device)
            else:
                fleet.assign(device, target)
        stages.append((target or "", wait_for(fleet, group, target, plan, sleep)))
    history.update(record.id, "rolled_back", f"rolled back from {record.model_ref}")
    return RolloutResult(record.id, record.model_ref, stages)


def undo_target(record: RolloutRecord) -> str:
    """A one-line description of what a rollback of `record` restores (for logs and annotations)."""
    targets = sorted({str(ref) for ref in record.previous.values()})
    return ", ".join(targets) or "nothing"
