"""Start-up wiring of the device, one flat list of steps: read it top to bottom to see the system."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from device.board import LiveBoard
from device.config import DeviceConfig
from device.drift.stage import DriftStage
from device.experiments.grafana_marks import mark_in_background
from device.experiments.quality import QualityFrameGate
from device.experiments.recorder import ExperimentRecorder
from device.experiments.store import ExperimentStore
from device.facade import DeviceFacade
from device.feed import Feed
from device.fleet.watcher import start_watcher
from device.health import status_fields
from device.inbox.store import InboxStore
from device.inbox.watch import Inbox
from device.inference.backend import BackendContext
from device.inference.detector import Detector, load_detector
from device.metrics.outbox import Outbox
from device.metrics.sender import OutboxSender
from device.metrics.stats import new_run_id
from device.models.settings import ModelSettings
from device.monitoring import apply_saved
from device.parts import DeviceParts
from device.publish import Calibration, DeviceTags, PointStore, PublishContext, Publisher
from device.reload import ModelReloader
from device.runtime import Runtime
from device.sources.capture import Capture
from device.sources.registry import open_source
from device.status import EventLog, Heartbeat
from device.tracking.experiment import TrackLog
from device.tracking.stage import TrackingStage
from device.web import WebServer, create_app

log = logging.getLogger(__name__)


def init_outbox(cfg: DeviceConfig) -> tuple[Outbox, OutboxSender]:
    outbox = Outbox(cfg.data_dir / "outbox.sqlite", int(cfg.outbox.max_mb * 1e6), cfg.outbox.history_s,
                    sending=bool(cfg.influx.url))
    return outbox, OutboxSender(outbox, cfg.influx)


def init_experiments(cfg: DeviceConfig, events: EventLog) -> tuple[ExperimentRecorder, TrackLog | None]:
    """The experiment store and recorder; an experiment running before a restart continues."""
    recorder = ExperimentRecorder(
        ExperimentStore(cfg.data_dir / "experiments.sqlite"), cfg.device_name, cfg.project, events,
        lambda experiment, which: mark_in_background(cfg.grafana, experiment, which)).start_thread()
    return recorder, TrackLog(cfg.data_dir / "experiments.sqlite") if cfg.tracking.enabled else None


def init_source(cfg: DeviceConfig, events: EventLog) -> Capture:
    """The capture for `config.source`; a malformed URI fails here, a missing camera does not."""
    return Capture(open_source(cfg.source), (cfg.capture.reconnect_min_s, cfg.capture.reconnect_max_s), events=events)


def init_feed(cfg: DeviceConfig, capture: Capture, calibration: Calibration, tags: DeviceTags, events: EventLog) -> Feed:
    """The main model and one pipeline per entry of `models`. A bad bundle does not stop the device:
    the stream and panel still come up (so a good model can be uploaded), /healthz says why."""
    def load(path: Path, settings: ModelSettings) -> Detector:
        context = BackendContext(cfg.hive, lambda: capture.period_s)
        return load_detector(path, settings.backend, cfg.data_dir, settings.score_threshold, context)

    def stages() -> list:  # type: ignore[type-arg]
        tracking = [TrackingStage(cfg.tracking, calibration, tags)] if cfg.tracking.enabled else []
        return [*tracking, DriftStage(cfg.drift, events)]

    main = ModelSettings(name="main", bundle=cfg.model or "-", backend=cfg.backend, score_threshold=cfg.score_threshold)
    feed = Feed(main, load, QualityFrameGate(cfg.quality), stages, events, cfg.max_models_beside, cfg.hive.probe_interval_s)
    feed.start_model(main, cfg.model)
    for extra in cfg.models:
        feed.start_model(extra, extra.bundle)
    return feed


def init_inbox(cfg: DeviceConfig, events: EventLog, store: PointStore, tags: DeviceTags) -> Inbox | None:
    """The review inbox (docs/inbox.md), its frames under data_dir/inbox; None when switched off."""
    if not cfg.inbox.enabled:
        return None
    frames = InboxStore(cfg.data_dir / "inbox", cfg.inbox.max_frames, int(cfg.inbox.max_mb * 1e6), events)
    return Inbox(cfg.inbox, frames, store, tags)


def build_device(cfg: DeviceConfig, capture: Capture | None = None) -> Runtime:
    """Every part of one device, wired; `capture` replaces the configured source (tests)."""
    cfg = apply_saved(cfg)  # drift and inbox settings changed in the panel (device/monitoring.py)
    outbox, sender = init_outbox(cfg)
    store = PointStore(outbox)
    tags = DeviceTags(cfg.device_name, cfg.project)
    events = EventLog(store, tags)
    experiments, track_log = init_experiments(cfg, events)
    tags.experiments = experiments
    calibration = Calibration(cfg.um_per_pixel, experiments)
    capture = capture or init_source(cfg, events)
    feed = init_feed(cfg, capture, calibration, tags, events)
    board = LiveBoard()
    run_id = new_run_id()
    publisher = Publisher(PublishContext(store, tags, calibration, run_id, lambda: capture.dropped, experiments, track_log), board)
    heartbeat = Heartbeat(cfg.status_interval_s, lambda: status_fields(parts), store, tags)
    parts = DeviceParts(cfg, run_id, time.time(), outbox, sender, store, tags, events, calibration, capture, feed,
                        board, publisher, heartbeat, experiments, track_log, init_inbox(cfg, events, store, tags))
    return Runtime(parts)


def run_device(config: DeviceConfig, reload_config: Callable[[], DeviceConfig] | None = None,
               config_file: Path | None = None) -> int:
    """Run until SIGTERM/SIGINT, the end of a finite source, or `config.max_frames` frames.
    `reload_config` re-reads file + environment + flags; with it, model changes apply live."""
    runtime = build_device(config).start()
    device = DeviceFacade(runtime.parts)
    watcher = start_watcher(config.fleet, device, config.data_dir)  # None unless fleet.enabled
    reloader = ModelReloader(runtime.parts.feed, reload_config, config, config_file).start() if reload_config else None
    web = WebServer(create_app(config, device), config.host, config.port, config.web).start() if config.port else None

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping after this frame", signum)
        runtime.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        processed = runtime.run(config.max_frames)
    finally:
        if watcher is not None:
            watcher.stop()
        if reloader is not None:
            reloader.stop()
        runtime.shutdown()
        if web is not None:
            web.stop()
    log.info("processed %d frames", processed)
    capture = runtime.parts.capture
    if capture.state == "failed":
        log.error("the source failed for good: %s", capture.error)
        return 1
    return 0
