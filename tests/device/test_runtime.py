"""The running device, in-process: hot model swap, bad bundles, bad frames, local history."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from device.config import DeviceConfig
from device.models.bundle import BundleError
from device.runtime import Runtime
from device.sources.capture import Capture
from device.web_protocol import NoModel
from tests.device.runtime_helpers import facade, start_runtime, wait_for


def test_hot_swap_keeps_the_loop_running(running: Runtime, peak_bundle_v2: Path) -> None:
    before = running.parts.publisher.processed
    card = running.parts.feed.switch_model(peak_bundle_v2)
    assert card.version == "2.0.0" and facade(running).model_card().version == "2.0.0"  # type: ignore[union-attr]
    assert wait_for(lambda: running.parts.publisher.processed >= before + 10)
    latest = facade(running).latest()
    assert latest is not None and latest.detections is not None and latest.analyses[0].card is not None
    assert latest.analyses[0].card.version == "2.0.0" and latest.stats["count"] == len(latest.detections) > 0
    history = running.parts.outbox.history(60)
    models = [h["model"] for h in history]
    assert "peaks" in models and models[-1] == "peaks-b"  # frames before and after, no restart
    assert [e["kind"] for e in running.parts.events.recent][-1] == "model_switched"


def test_bad_bundle_is_rejected_and_the_old_model_keeps_running(running: Runtime, peak_bundle: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(peak_bundle, broken)
    (broken / "model.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(BundleError, match="cannot load"):
        running.parts.feed.switch_model(broken)
    with pytest.raises(BundleError, match="no such model bundle"):
        running.parts.feed.switch_model(tmp_path / "missing")
    assert facade(running).model_card().name == "peaks"  # type: ignore[union-attr]
    count = running.parts.publisher.processed
    assert wait_for(lambda: running.parts.publisher.processed > count + 5)
    assert facade(running).health()["model"]["error"].endswith("(give a folder or .zip with model.json and model.onnx)")
    assert [e["kind"] for e in running.parts.events.recent].count("model_rejected") == 2


class GarbageEveryOther:
    """A camera that sometimes hands over broken frames (empty, 1-pixel, wrong channel count)."""

    name, live = "flaky camera", False

    def __init__(self) -> None:
        self.n = 0
        self.bad = [np.zeros((0, 0, 3), np.uint8), np.zeros((1, 1, 7), np.uint8), np.zeros((5,), np.uint8)]

    def open(self) -> None:
        pass

    def read(self) -> np.ndarray:
        self.n += 1
        if self.n % 2:
            return self.bad[(self.n // 2) % 3]
        return np.full((240, 320, 3), 128, np.uint8)

    def close(self) -> None:
        pass


def test_corrupt_frames_are_recorded_as_failed_and_counted(peak_bundle: Path, tmp_path: Path) -> None:
    """Every captured frame writes its frame point: a broken one with `failed` and no count (not
    dropped: Grafana shows "not analysed", never a gap or a zero), and the loop goes on."""
    config = DeviceConfig.model_validate({"model": str(peak_bundle), "data_dir": str(tmp_path), "port": 0})
    runtime, thread = start_runtime(config, Capture(GarbageEveryOther()))
    try:
        assert wait_for(lambda: runtime.parts.publisher.processed >= 20, timeout=60)
        assert runtime.parts.feed.bad_frames >= 9
        shown = facade(runtime).health()["camera"]["bad_frames"]  # the live counter: the loop may count one more meanwhile
        assert shown >= 9 and shown <= runtime.parts.feed.bad_frames <= shown + 2
    finally:
        runtime.stop()
        thread.join(timeout=5)
        runtime.shutdown()
    history = runtime.parts.outbox.history(3600)
    failed = [h for h in history if h["inference"] == "failed"]
    good = [h for h in history if h["inference"] == "local"]
    assert len(failed) >= 9 and len(good) >= 9 and len(failed) + len(good) == len(history)
    assert all("count" not in h for h in failed) and all("count" in h for h in good)


def test_heartbeat_and_health_without_influx(running: Runtime) -> None:
    health = facade(running).health()
    assert health["ok"] and health["camera"]["state"] == "ok" and health["model"]["backend"].startswith("onnx")
    assert health["outbox"]["state"] == "disabled" and health["outbox"]["depth"] == 0
    stats = facade(running).live_stats()
    assert set(stats["counts"]) == {"cell", "crystal", "debris"} and stats["fps"] > 0
    found = facade(running).detect(np.full((240, 320, 3), 128, np.uint8))
    assert len(found) == 0  # a blank field has no objects


def test_a_failing_outbox_disk_is_reported_and_the_stream_goes_on(running: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    def disk_full(points: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    assert running.parts.outbox is not None
    monkeypatch.setattr(running.parts.outbox, "add", disk_full)
    start = running.parts.publisher.processed
    assert wait_for(lambda: running.parts.publisher.processed >= start + 5)
    assert facade(running).health()["outbox"]["write_errors"] >= 5
    assert facade(running).latest() is not None and facade(running).latest().index > start  # type: ignore[union-attr]


def test_without_a_model_nothing_reads_as_zero(tmp_path: Path) -> None:
    """Defects: LatestFrame.detections was an empty Detections when the main model did not analyse
    the frame, and detect() without a model answered "no objects"."""
    config = DeviceConfig.model_validate({"source": "synthetic://?seed=4&width=320&height=240&fps=30",
                                          "data_dir": str(tmp_path), "port": 0})
    runtime, thread = start_runtime(config)
    try:
        assert wait_for(lambda: runtime.parts.publisher.processed >= 3)
        latest = facade(runtime).latest()
        assert latest is not None and latest.detections is None and latest.analyses[0].inference == "no_model"
        assert facade(runtime).live_stats()["count"] is None
        with pytest.raises(NoModel, match="no model is loaded"):
            facade(runtime).detect(latest.image)
    finally:
        runtime.stop()
        thread.join(timeout=5)
        runtime.shutdown()
    history = runtime.parts.outbox.history(60)
    assert history and all(h["inference"] == "no_model" and "count" not in h for h in history)
