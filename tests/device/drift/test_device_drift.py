"""The drift alarm on the running device: bad settings refused with the reason, a bundle without a
baseline learns one and says so (event, /healthz, heartbeat fields), every pipeline has its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from device.config import ConfigError, DeviceConfig, load_config
from device.health import status_fields
from device.runtime import Runtime
from tests.device.runtime_helpers import facade, start_runtime, wait_for


@pytest.mark.parametrize(("env", "message"), [
    ({"SCOPEHIVE_DRIFT__WINDOW_FRAMES": "5"}, r"drift\.window_frames.*environment variable SCOPEHIVE_DRIFT__WINDOW_FRAMES.*20"),
    ({"SCOPEHIVE_DRIFT__PSI": "9"}, r"drift\.psi.*less than or equal to 5"),
    ({"SCOPEHIVE_DRIFT__WINDOW_FRAMES": "30", "SCOPEHIVE_DRIFT__CONFIRM_FRAMES": "40"}, r"confirm_frames \(40\) must not exceed"),
])
def test_out_of_range_drift_settings_are_refused_with_the_reason(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(environ=env)


@pytest.fixture
def learning(peak_bundle: Path, tmp_path: Path) -> Iterator[Runtime]:
    config = DeviceConfig.model_validate({
        "source": "synthetic://?seed=4&width=320&height=240&fps=60", "model": str(peak_bundle), "data_dir": str(tmp_path),
        "port": 0, "drift": {"learn_frames": 20, "window_frames": 20, "min_objects": 20, "confirm_frames": 5}})
    runtime, thread = start_runtime(config)
    yield runtime
    runtime.stop()
    thread.join(timeout=5)
    runtime.shutdown()


def test_a_bundle_without_baseline_learns_one_and_reports_it(learning: Runtime) -> None:
    health = lambda: facade(learning).health()  # noqa: E731
    assert wait_for(lambda: health()["models"][0]["drift"]["state"] in ("ok", "drift"), timeout=60)
    drift = health()["models"][0]["drift"]
    assert "learnt from the first 20 analysed frames of this run (the bundle has no baseline)" in drift["baseline"]
    assert health()["drift"]["models"]["main"]["baseline"] == drift["baseline"]
    kinds = [e["kind"] for e in learning.parts.events.recent]
    assert "drift_baseline_learnt" in kinds
    fields = status_fields(learning.parts)
    assert fields["drift_state"] in ("ok", "drift") and fields["drift_alarm"] in (0, 1)
    assert facade(learning).live_stats()["drift"]["models"]["main"]["state"] == drift["state"]
