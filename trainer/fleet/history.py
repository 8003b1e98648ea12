"""What each rollout changed, kept in the object store so `rollback` can undo it from any machine.

Device tags only hold the current assignment; the history keeps, per rollout, every touched
device's previous assignment (None = it had none), so a rollback restores exactly that and two
rollbacks in a row walk back two rollouts.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trainer.fleet.store import FleetStore

HISTORY_FORMAT = "scopehive-fleet-history"
State = Literal["canary", "rolling", "done", "failed", "rolled_back"]


class RolloutRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    at: datetime
    model_ref: str = Field(description="name:version assigned")
    device_type: str | None = None
    previous: dict[str, str | None] = Field(default_factory=dict, description="uuid -> previous assignment")
    state: State = "canary"
    note: str = ""


class FleetHistory(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str = HISTORY_FORMAT
    fleet: str
    rollouts: list[RolloutRecord] = Field(default_factory=list)


class HistoryStore:
    """Loads and saves `fleet/<fleet>/history.json`; one writer at a time is assumed (the trainer)."""

    def __init__(self, store: FleetStore, fleet: str) -> None:
        self.store = store
        self.fleet = fleet
        self.key = f"fleet/{fleet.lower()}/history.json"

    def load(self) -> FleetHistory:
        document = self.store.get_json(self.key)
        if document is None:
            return FleetHistory(fleet=self.fleet)
        return FleetHistory.model_validate(document)

    def save(self, history: FleetHistory) -> None:
        self.store.put_json(self.key, history.model_dump(mode="json"))

    def begin(self, model_ref: str, device_type: str | None, previous: dict[str, str | None]) -> RolloutRecord:
        history = self.load()
        record = RolloutRecord(
            id=max((r.id for r in history.rollouts), default=0) + 1,
            at=datetime.now(timezone.utc),
            model_ref=model_ref,
            device_type=device_type,
            previous=previous,
        )
        history.rollouts.append(record)
        self.save(history)
        return record

    def update(self, record_id: int, state: State, note: str = "") -> None:
        history = self.load()
        for record in history.rollouts:
            if record.id == record_id:
                record.state = state
                record.note = note
        self.save(history)

    def last_undoable(self) -> RolloutRecord | None:
        """The newest rollout not yet rolled back."""
        for record in reversed(self.load().rollouts):
            if record.state != "rolled_back":
                return record
        return None
