"""Follows the model balena assigns to this device and switches to it without a restart.

Every `poll_interval_s` the watcher reads this device's tags. When the assignment
(`scopehive.model` tag, else the fleet default `fleet.model_ref`) differs from what runs, it
fetches the bundle from the object store, verifies it, and calls `runtime.switch_model`: the
stream keeps going, and a bad bundle leaves the old model running. It answers on the device's
own tags — `scopehive.model.running` or `scopehive.model.error` — which is what a rollout waits
for, then uploads any TensorRT engine built here so the next device of the same type skips the build.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from device.fleet.balena_device import (
    ASSIGN_TAG,
    ERROR_TAG,
    RUNNING_TAG,
    BalenaDevice,
    BalenaDeviceError,
)
from device.fleet.engines import GpuSignature, local_gpu, upload_engines
from device.fleet.fetch import FetchError, bundle_prefix, fetch_bundle
from device.fleet.settings import FleetSettings
from device.models.bundle import BundleError, load_bundle
from device.storage import Storage, StorageError, open_storage
from device.web_protocol import DeviceRuntime

log = logging.getLogger(__name__)


class ModelWatcher:
    """One background thread; `poll_once` is the whole decision, so tests can drive it directly."""

    def __init__(self, settings: FleetSettings, runtime: DeviceRuntime, data_dir: Path,
                 balena: BalenaDevice, store: Storage) -> None:
        self.settings = settings
        self.runtime = runtime
        self.data_dir = data_dir
        self.balena = balena
        self.store = store
        self.gpu: GpuSignature | None = local_gpu()
        self._failed: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def running(self) -> str | None:
        card = self.runtime.model_card()
        return card.label if card else None

    def poll_once(self) -> str:
        """Read the assignment, act on it, and say what happened (for logs and tests)."""
        tags = self.balena.tags()
        wanted = tags.get(ASSIGN_TAG) or self.settings.model_ref or None
        current = self.running()
        if wanted is None or wanted == current:
            if current and tags.get(RUNNING_TAG) != current:
                self.balena.set_tag(RUNNING_TAG, current)
            self._failed.clear()
            return f"running {current}"
        if wanted in self._failed:
            return f"still running {current}: {wanted} was rejected"
        return self._switch(wanted)

    def _switch(self, wanted: str) -> str:
        log.info("fleet assigns model %s (running %s): fetching it", wanted, self.running())
        try:
            folder = fetch_bundle(self.store, wanted, self.data_dir / "fleet" / "models", self.gpu)
            bundle = load_bundle(folder)
            if bundle.card.label != wanted:
                raise FetchError(f"the bundle published as {wanted} says it is {bundle.card.label}: republish it")
            card = self.runtime.switch_model(folder)
        except (FetchError, BundleError, StorageError) as exc:
            self._failed.add(wanted)
            log.error("model %s rejected, still running %s: %s", wanted, self.running(), exc)
            self.balena.set_tag(ERROR_TAG, f"{wanted} {exc}")
            return f"rejected {wanted}: {exc}"
        self.balena.set_tag(RUNNING_TAG, card.label)
        log.info("switched to model %s", card.label)
        self._share_engines(wanted, bundle.fingerprint())
        return f"switched to {card.label}"

    def _share_engines(self, ref: str, fingerprint: str) -> None:
        if not self.settings.upload_engines:
            return
        try:
            keys = upload_engines(self.store, bundle_prefix(ref), self.data_dir, fingerprint,
                                  self.settings.resolved_device_type())
        except (StorageError, OSError) as exc:
            log.warning("could not upload the TensorRT engine built here (%s); other devices will build their own", exc)
            return
        for key in keys:
            log.info("uploaded the TensorRT engine built here to %s", self.store.describe(key))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                outcome = self.poll_once()
                log.debug("fleet watcher: %s", outcome)
            except BalenaDeviceError as exc:
                log.warning("fleet watcher: %s", exc)
            except Exception:  # never let the watcher take the frame loop down with it
                log.exception("fleet watcher failed; trying again in %.0f s", self.settings.poll_interval_s)
            self._stop.wait(self.settings.poll_interval_s)

    def start(self) -> ModelWatcher:
        self._thread = threading.Thread(target=self._loop, name="fleet-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)


def start_watcher(settings: FleetSettings, runtime: DeviceRuntime, data_dir: Path) -> ModelWatcher | None:
    """The device's one call: a running watcher when fleet mode is on, else None."""
    if not settings.enabled:
        return None
    if not settings.store:
        raise BalenaDeviceError(
            "fleet mode needs SCOPEHIVE_FLEET__STORE (e.g. s3://scopehive?endpoint=minio:9000&secure=0) "
            "to fetch assigned models from"
        )
    balena = BalenaDevice.from_environment(settings.api_url)
    watcher = ModelWatcher(settings, runtime, data_dir, balena, open_storage(settings.store))
    device_type = settings.resolved_device_type()
    log.info("fleet mode: device %s (%s) follows its balena model assignment every %g s",
             balena.uuid[:7], device_type, settings.poll_interval_s)
    if watcher.gpu is None:
        log.warning("%s without TensorRT/CUDA here: models run on the CPU backend (ONNX Runtime), "
                    "no TensorRT engine is built or shared", device_type)
    else:
        log.info("TensorRT %s on a GPU of compute capability %s: engines built here are shared with the fleet",
                 watcher.gpu.tensorrt_version, watcher.gpu.compute_capability)
    return watcher.start()
