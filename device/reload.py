"""Model changes from configuration, without a restart: watches the config file and the model
bundle; when `model` in the file changes, or the bundle's model.json is replaced in place, the
runtime hot-swaps (a bad bundle is rejected and the old model keeps running)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from device.config import ConfigError, DeviceConfig
from device.feed import Feed, sync_models
from device.models.bundle import BundleError

log = logging.getLogger(__name__)


def _mtime(path: Path | None) -> float:
    try:
        return path.stat().st_mtime if path else 0.0
    except OSError:
        return 0.0


class ModelReloader:
    """Polls (cheap stat calls) every `interval` seconds on a daemon thread."""

    def __init__(self, feed: Feed, reload_config: Callable[[], DeviceConfig], running: DeviceConfig,
                 config_file: Path | None, interval: float = 2.0) -> None:
        self.feed = feed
        self._reload_config = reload_config
        self._config_file = config_file
        self._interval = interval
        try:
            self._model = reload_config().model or ""
        except ConfigError:
            self._model = running.model or ""
        self._stamps = self._current_stamps()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="model-reloader", daemon=True)

    def _bundle_card(self) -> Path | None:
        return Path(self._model) / "model.json" if self._model and Path(self._model).is_dir() else (Path(self._model) if self._model else None)

    def _current_stamps(self) -> tuple[float, float]:
        return _mtime(self._config_file), _mtime(self._bundle_card())

    def check_once(self) -> bool:
        """Swap if the configured model or its bundle changed; True when a swap happened."""
        stamps = self._current_stamps()
        if stamps == self._stamps:
            return False
        self._stamps = stamps
        try:
            config = self._reload_config()
        except ConfigError as exc:
            log.error("config file changed but is invalid, keeping the running model: %s", exc)
            return False
        wanted = config.model or ""
        changes = sync_models(self.feed, config.models)  # the models beside the main one
        if changes:
            log.info("models beside the main one, from configuration: %s", ", ".join(changes))
        if not wanted:
            return False
        self._model = wanted
        self._stamps = self._current_stamps()
        try:
            card = self.feed.switch_model(Path(wanted))
        except BundleError as exc:
            log.error("model change rejected, the previous model keeps running: %s", exc)
            return False
        log.info("model switched from configuration to %s", card.label)
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.check_once()
            except Exception:  # never let reloading take the device down
                log.exception("model reload check failed")

    def start(self) -> ModelReloader:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
