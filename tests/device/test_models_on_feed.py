"""Several models on one feed, from configuration, into the real InfluxDB: each writes its own
points (tag `model`), a model that skips a frame writes no count for it."""

from __future__ import annotations

from pathlib import Path

from device.config import DeviceConfig
from tests.conftest import Influx
from tests.device.runtime_helpers import facade, ready_runtime


def test_two_models_on_one_feed_each_write_their_own_points(influx: Influx, peak_bundle: Path, peak_bundle_v2: Path,
                                                           tmp_path: Path) -> None:
    config = DeviceConfig.model_validate({
        "device_name": "scope-2", "source": "synthetic://?seed=3&width=320&height=240", "model": str(peak_bundle),
        "models": [{"name": "second", "bundle": str(peak_bundle_v2), "every": 2, "overlay": False}],
        "data_dir": str(tmp_path), "port": 0, "influx": {"url": influx.url, "bucket": influx.database}})
    runtime = ready_runtime(config)
    assert runtime.run(max_frames=12) == 12
    runtime.shutdown()
    rows = influx.rows('SELECT "frame_index", "count", "inference" FROM "frame" GROUP BY "model"')
    main = sorted((int(r["frame_index"]), r["inference"], r["count"]) for r in rows if r["model"] == "peaks")  # type: ignore[call-overload]
    second = sorted((int(r["frame_index"]), r["inference"], r["count"]) for r in rows if r["model"] == "peaks-b")  # type: ignore[call-overload]
    assert [i for i, _, _ in main] == [i for i, _, _ in second] == list(range(12))
    assert all(inference == "local" and count is not None for _, inference, count in main)
    assert [(inference, count is None) for i, inference, count in second] == [("local", False), ("skipped", True)] * 6
    # the same detector under two names: on the frames both analysed, both counted the same
    assert [c for i, _, c in main if i % 2 == 0] == [c for i, _, c in second if i % 2 == 0]
    stats = influx.rows('SELECT count("count") AS n FROM "class_stats" WHERE "class" = \'cell\' GROUP BY "model"')
    assert {(r["model"], r["n"]) for r in stats} == {("peaks", 12), ("peaks-b", 6)}  # no zeros for skipped frames
    health = facade(runtime).health()
    assert [(m["pipeline"], m["every"], m["overlay"]) for m in health["models"]] == [("main", 1, True), ("second", 2, False)]


def test_two_slots_running_one_bundle_keep_every_point_in_influxdb(influx: Influx, peak_bundle: Path, tmp_path: Path) -> None:
    """Defect: frame points carried no slot tag, so two slots of one bundle wrote identical series
    and InfluxDB kept one point of each pair (266 in the outbox, 133 stored)."""
    config = DeviceConfig.model_validate({
        "device_name": "scope-3", "source": "synthetic://?seed=3&width=320&height=240", "model": str(peak_bundle),
        "models": [{"name": "twin", "bundle": str(peak_bundle)}],
        "data_dir": str(tmp_path), "port": 0, "influx": {"url": influx.url, "bucket": influx.database}})
    runtime = ready_runtime(config)
    assert runtime.run(max_frames=10) == 10
    runtime.shutdown()
    rows = influx.rows('SELECT "frame_index", "count" FROM "frame" GROUP BY "slot"')
    per_slot = {slot: sorted(int(r["frame_index"]) for r in rows if r["slot"] == slot) for slot in ("main", "twin")}  # type: ignore[call-overload]
    assert per_slot == {"main": list(range(10)), "twin": list(range(10))}
    stats = influx.rows('SELECT count("count") AS n FROM "class_stats" WHERE "class" = \'cell\' GROUP BY "slot"')
    assert {(r["slot"], r["n"]) for r in stats} == {("main", 10), ("twin", 10)}
