"""`hive.local_backend: none` with the hive down at boot: the model cannot load then, and loads
(and serves remotely) as soon as a server answers, without a restart."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from device.hive.router import HiveUnavailable
from device.hive.settings import HiveSettings
from device.hive.standby import ModelStandby, waits_for_hive
from device.inference.backend import BackendContext
from device.inference.detector import Detector, load_detector
from device.models.bundle import BundleError
from tests.device.hive.fake_kserve import FakeKServe
from tests.device.hive.frames import scope_frames
from tests.device.runtime_helpers import wait_for


def test_a_model_on_the_hive_alone_loads_once_the_hive_comes_up(peak_bundle: Path, tmp_path: Path) -> None:
    fake = FakeKServe(peak_bundle)  # its port is chosen, nothing listens there yet
    settings = HiveSettings(endpoints=[fake.url], local_backend="none", probe_interval_s=0.2, deadline_ms=2000)  # type: ignore[call-arg]

    def load() -> Detector:
        return load_detector(peak_bundle, "triton", tmp_path, None, BackendContext(settings))

    with pytest.raises(BundleError) as boot:
        load()  # the hive is down at boot: no warm-up answer, no local model
    assert waits_for_hive(boot.value)
    loaded: list[Detector] = []
    standby = ModelStandby(load, loaded.append, settings.probe_interval_s, "main").start()
    try:
        assert wait_for(lambda: standby.attempts >= 2)
        assert not loaded and standby.waiting and "hive" in standby.error
        fake.start()
        assert wait_for(lambda: bool(loaded), 15), standby.error
        assert not standby.waiting and standby.error == ""
        run = loaded[0].analyse(scope_frames(1)[0])
        assert run.route == f"remote:{fake.url}" and len(run.detections) > 0
    finally:
        standby.stop()
        for detector in loaded:
            detector.backend.close()  # type: ignore[attr-defined]
        fake.stop()


def test_a_bundle_that_cannot_load_for_another_reason_is_not_retried(tmp_path: Path) -> None:
    calls: list[int] = []

    def broken() -> object:
        calls.append(1)
        raise BundleError("model.json: no such file")

    standby = ModelStandby(broken, lambda model: None, 0.05, "main").start()
    assert wait_for(lambda: not standby.waiting)
    assert len(calls) == 1 and "no such file" in standby.error


def test_the_probe_threads_of_failed_loads_do_not_pile_up(peak_bundle: Path, tmp_path: Path) -> None:
    """Each failed attempt built a backend (and its probe thread): they must end, not accumulate."""
    import gc

    fake = FakeKServe(peak_bundle)
    settings = HiveSettings(endpoints=[fake.url], local_backend="none", probe_interval_s=0.05)  # type: ignore[call-arg]
    before = sum(t.name == "hive-probe" for t in threading.enumerate())
    failures = 0
    for _ in range(5):
        try:
            load_detector(peak_bundle, "triton", tmp_path, None, BackendContext(settings))
        except BundleError:  # not pytest.raises: its record of the error would keep the last backend alive
            failures += 1
    assert failures == 5
    gc.collect()
    assert wait_for(lambda: sum(t.name == "hive-probe" for t in threading.enumerate()) <= before, 5)


def test_waits_for_hive_follows_the_cause_chain() -> None:
    try:
        try:
            raise HiveUnavailable("no endpoint answered")
        except HiveUnavailable as exc:
            raise BundleError("the model fails on a test frame") from exc
    except BundleError as outer:
        assert waits_for_hive(outer)
    assert not waits_for_hive(BundleError("bad card"))



def test_a_device_whose_hive_is_down_at_boot_analyses_once_it_is_up(peak_bundle: Path, tmp_path: Path) -> None:
    """Issue 21 item 7 end to end: the device's own wiring keeps trying, and its frames go from
    `no_model` to remote analyses without a restart."""
    from device.config import DeviceConfig
    from tests.device.runtime_helpers import start_runtime

    fake = FakeKServe(peak_bundle)
    config = DeviceConfig.model_validate({
        "source": "synthetic://?seed=4&width=320&height=240&fps=20", "model": str(peak_bundle), "backend": "triton",
        "hive": {"endpoints": [fake.url], "local_backend": "none", "probe_interval_s": 0.2, "deadline_ms": 2000},
        "data_dir": str(tmp_path), "port": 0})
    runtime, thread = start_runtime(config)
    try:
        assert wait_for(lambda: runtime.parts.publisher.processed >= 5)
        assert runtime.parts.feed.detector is None
        fake.start()
        assert wait_for(lambda: runtime.parts.feed.detector is not None, 20)
        start = runtime.parts.publisher.processed
        assert wait_for(lambda: runtime.parts.publisher.processed >= start + 5)
    finally:
        runtime.stop()
        thread.join(timeout=10)
        runtime.shutdown()
        fake.stop()
    routes = [h["inference"] for h in runtime.parts.outbox.history(600)]
    assert routes[0] == "no_model" and routes[-1] == f"remote:{fake.url}"
    assert "model_loaded" in [e["kind"] for e in runtime.parts.events.recent]
