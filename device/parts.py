"""The parts of one running device, as device/app.py wires them: a plain record that the loop,
the status reporter and the web facade each read what they need from."""

from __future__ import annotations

from dataclasses import dataclass

from device.board import LiveBoard
from device.config import DeviceConfig
from device.experiments.recorder import ExperimentRecorder
from device.feed import Feed
from device.inbox.watch import Inbox
from device.metrics.outbox import Outbox
from device.metrics.sender import OutboxSender
from device.publish import Calibration, DeviceTags, PointStore, Publisher
from device.sources.capture import Capture
from device.status import EventLog, Heartbeat
from device.tracking.experiment import TrackLog
from device.tracking.stage import TrackingStage


@dataclass
class DeviceParts:
    config: DeviceConfig
    run_id: str  # frame_index restarts at 0 on every start: (run_id, frame_index) is unique
    started: float
    outbox: Outbox
    sender: OutboxSender
    store: PointStore
    tags: DeviceTags
    events: EventLog
    calibration: Calibration
    capture: Capture
    feed: Feed
    board: LiveBoard
    publisher: Publisher
    heartbeat: Heartbeat
    experiments: ExperimentRecorder | None = None
    track_log: TrackLog | None = None  # tracks and crossings of experiments, for their summary
    inbox: Inbox | None = None  # the review inbox (docs/inbox.md)

    def tracking(self) -> TrackingStage | None:
        """The main model's tracking stage (the panel's counting line and flow settings act on it)."""
        stages = self.feed.pipelines[0].stages if self.feed.pipelines else []
        return next((s for s in stages if isinstance(s, TrackingStage)), None)
