"""A fleet assignment or a fleet bundle whose name would break every metric line is refused, the
old model keeps running and the reason lands on the device's error tag (issue 21, item 1)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from device.models.bundle import load_bundle
from tests.device.bundles import peak_detector_bundle
from tests.fleet.test_watcher import BundleRuntime, Setup, _watcher, setup  # noqa: F401  (setup: the fixture)


def _publish_as(fleet: Setup, folder: Path, prefix: str, card_changes: dict[str, str]) -> None:
    """Publish `folder` under `prefix` with its model.json changed (what a careless publisher does)."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        data = path.read_bytes()
        if relative == "model.json":
            data = json.dumps({**json.loads(data), **card_changes}).encode()
        fleet.store.put(prefix + relative, data)
        files[relative] = hashlib.sha256(data).hexdigest()
    fleet.store.put_json(prefix + "bundle.json", {"files": files})


def test_a_fleet_bundle_with_a_newline_in_its_version_is_refused(setup: Setup, tmp_path: Path) -> None:  # noqa: F811
    runtime = BundleRuntime(load_bundle(setup.bundles / "1.0.0").card)
    watcher = _watcher(setup, runtime, tmp_path / "data")
    _publish_as(setup, peak_detector_bundle(tmp_path / "evil", version="3.0.0"), "models/peaks/3.0.0/",
                {"version": "3.0.0\nevil"})
    setup.api.add("device_tag", device=setup.device_id, tag_key="scopehive.model", value="peaks:3.0.0")
    outcome = watcher.poll_once()
    assert outcome.startswith("rejected peaks:3.0.0") and "control character U+000A" in outcome
    assert runtime.switches == [] and runtime.card is not None and runtime.card.label == "peaks:1.0.0"
    error = setup.api.tag(setup.device_id, "scopehive.model.error") or ""
    assert "control character U+000A" in error


def test_an_assignment_with_a_newline_is_refused_before_anything_is_fetched(setup: Setup, tmp_path: Path) -> None:  # noqa: F811
    runtime = BundleRuntime(load_bundle(setup.bundles / "1.0.0").card)
    watcher = _watcher(setup, runtime, tmp_path / "data")
    setup.api.add("device_tag", device=setup.device_id, tag_key="scopehive.model", value="peaks:2.0.0\nevil")
    outcome = watcher.poll_once()
    assert "control character U+000A" in outcome and runtime.switches == []
    assert not (tmp_path / "data" / "fleet" / "models").exists()  # nothing fetched, no folder named after it
