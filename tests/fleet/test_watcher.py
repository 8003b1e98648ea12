"""The device-side watcher: fetching assigned bundles (verified), refusing bad ones while the old
model keeps running, and sharing TensorRT engines between devices of the same kind through the
store. Object store: moto S3 on loopback; balena API: the stand-in (fake_balena.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from device.fleet.balena_device import BalenaDevice, BalenaDeviceError
from device.fleet.engines import GpuSignature
from device.fleet.fetch import fetch_bundle
from device.fleet.settings import FleetSettings
from device.fleet.watcher import ModelWatcher
from device.models.bundle import ModelCard, load_bundle
from device.storage import Storage, open_storage
from tests.device.bundles import peak_detector_bundle
from tests.fleet.fake_balena import FakeBalena
from tests.fleet.publishing import publish_folder


@dataclass
class BundleRuntime:
    """The part of DeviceRuntime the watcher uses; validates bundles with the real reader."""

    card: ModelCard | None = None
    switches: list[Path] = field(default_factory=list)

    def model_card(self) -> ModelCard | None:
        return self.card

    def switch_model(self, bundle_path: Path) -> ModelCard:
        self.card = load_bundle(bundle_path).card
        self.switches.append(bundle_path)
        return self.card


@dataclass
class Setup:
    api: FakeBalena
    store: Storage
    device_id: int
    balena: BalenaDevice
    bundles: Path


@pytest.fixture
def setup(tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    monkeypatch.setenv("SCOPEHIVE_S3_ACCESS_KEY", "fleet-test")
    monkeypatch.setenv("SCOPEHIVE_S3_SECRET_KEY", "fleet-test-secret")
    store = open_storage(f"s3://watcher-{tmp_path.name[-12:].lower().replace('_', '-')}?endpoint={s3_endpoint}&secure=0")
    bundles = tmp_path / "bundles"
    for version in ("1.0.0", "2.0.0"):
        publish_folder(store, peak_detector_bundle(bundles / version, version=version))
    api = FakeBalena()
    device_id = api.add_device(api.add_fleet("lab/hive"), "e" * 32, "dev-1", "jetson-nano", key="device-key")
    url = api.start()
    yield Setup(api, store, device_id, BalenaDevice(url, "device-key", "e" * 32), bundles)
    api.stop()


def _watcher(setup: Setup, runtime: BundleRuntime, data_dir: Path) -> ModelWatcher:
    return ModelWatcher(FleetSettings(enabled=True, store="unused"), runtime, data_dir, setup.balena, setup.store)


def test_switches_to_the_assignment_and_answers_on_its_own_tags(setup: Setup, tmp_path: Path) -> None:
    runtime = BundleRuntime(load_bundle(setup.bundles / "1.0.0").card)
    watcher = _watcher(setup, runtime, tmp_path / "data")

    assert watcher.poll_once() == "running peaks:1.0.0"
    assert setup.api.tag(setup.device_id, "scopehive.model.running") == "peaks:1.0.0"

    setup.api.add("device_tag", device=setup.device_id, tag_key="scopehive.model", value="peaks:2.0.0")
    assert watcher.poll_once() == "switched to peaks:2.0.0"
    assert runtime.switches == [tmp_path / "data" / "fleet" / "models" / "peaks" / "2.0.0"]
    assert setup.api.tag(setup.device_id, "scopehive.model.running") == "peaks:2.0.0"


def test_a_corrupted_bundle_is_refused_reported_and_not_retried(setup: Setup, tmp_path: Path) -> None:
    setup.store.put("models/peaks/2.0.0/model.onnx", b"not the published model")
    runtime = BundleRuntime(load_bundle(setup.bundles / "1.0.0").card)
    watcher = _watcher(setup, runtime, tmp_path / "data")
    setup.api.add("device_tag", device=setup.device_id, tag_key="scopehive.model", value="peaks:2.0.0")

    outcome = watcher.poll_once()

    assert outcome.startswith("rejected peaks:2.0.0")
    assert runtime.card is not None and runtime.card.version == "1.0.0"  # the old model keeps running
    error = setup.api.tag(setup.device_id, "scopehive.model.error") or ""
    assert error.startswith("peaks:2.0.0 ") and "does not match its sha256 in bundle.json" in error
    assert not (tmp_path / "data" / "fleet" / "models" / "peaks" / "2.0.0").exists()
    assert watcher.poll_once() == "still running peaks:1.0.0: peaks:2.0.0 was rejected"


def test_an_unpublished_model_is_reported_with_what_to_do(setup: Setup, tmp_path: Path) -> None:
    watcher = _watcher(setup, BundleRuntime(), tmp_path / "data")
    setup.api.add("device_tag", device=setup.device_id, tag_key="scopehive.model", value="peaks:9.9.9")

    watcher.poll_once()

    error = setup.api.tag(setup.device_id, "scopehive.model.error") or ""
    assert "models/peaks/9.9.9/bundle.json is missing" in error and "python -m trainer publish" in error


def test_an_engine_built_on_one_device_reaches_the_next_device_of_the_same_kind(setup: Setup, tmp_path: Path) -> None:
    builder_dir = tmp_path / "nx-1"
    fingerprint = load_bundle(setup.bundles / "2.0.0").fingerprint()
    engine = builder_dir / "engines" / f"{fingerprint[:16]}_trt8.5_sm72_fp16.engine"
    engine.parent.mkdir(parents=True)
    engine.write_bytes(b"serialized engine bytes")  # what the TensorRT backend caches after a build
    watcher = _watcher(setup, BundleRuntime(), builder_dir)
    setup.api.add("device_tag", device=setup.device_id, tag_key="scopehive.model", value="peaks:2.0.0")

    assert watcher.poll_once() == "switched to peaks:2.0.0"

    index = setup.store.get_json("models/peaks/2.0.0/engines.json")
    assert [(e["file"], e["tensorrt_version"], e["compute_capability"]) for e in index["engines"]] == [
        ("engines/trt8.5_sm72_fp16.engine", "8.5", "7.2")]
    same_kind = fetch_bundle(setup.store, "peaks:2.0.0", tmp_path / "nx-2", GpuSignature("8.5", "7.2"))
    shipped = load_bundle(same_kind).engine_for("8.5.2", "7.2")
    assert shipped is not None and shipped.read_bytes() == b"serialized engine bytes"
    other_gpu = fetch_bundle(setup.store, "peaks:2.0.0", tmp_path / "orin-1", GpuSignature("10.3", "8.7"))
    assert load_bundle(other_gpu).card.engines == [] and not (other_gpu / "engines").exists()


def test_fleet_mode_without_the_balena_api_label_says_which_variables_are_missing() -> None:
    with pytest.raises(BalenaDeviceError, match="BALENA_API_KEY, BALENA_DEVICE_UUID.*io.balena.features.balena-api"):
        BalenaDevice.from_environment("http://127.0.0.1:9/", environ={})
