"""Several models on one feed, from configuration, into the real InfluxDB: each writes its own
points (tag `model`), a model that skips a frame writes no count for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

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


def test_the_same_bundle_twice_shares_one_session_and_the_models_beside_are_capped(peak_bundle: Path, peak_bundle_v2: Path,
                                                                                 tmp_path: Path) -> None:
    """Defect: 20 copies of the demo model cost +2.5 GB, with no cap, and removal kept the memory."""
    config = DeviceConfig.model_validate({"source": "synthetic://?seed=3&width=320&height=240", "model": str(peak_bundle),
                                          "data_dir": str(tmp_path), "port": 0, "max_models_beside": 2})
    runtime = ready_runtime(config)
    feed = runtime.parts.feed
    try:
        feed.add_model("twin", peak_bundle)
        main, twin = feed.pipeline("main").slot.detector, feed.pipeline("twin").slot.detector
        assert main is twin and len(feed.detectors) == 1  # one inference session for both slots
        feed.add_model("other", peak_bundle_v2)
        assert len(feed.detectors) == 2
        with pytest.raises(ValueError, match="at most 2 model"):
            feed.add_model("third", peak_bundle_v2)
        assert [p.name for p in feed.pipelines] == ["main", "twin", "other"]  # the refusal changed nothing
        feed.remove_model("twin")
        assert feed.pipeline("main").slot.detector is main and len(feed.detectors) == 2
        assert len(main.detect(np.full((240, 320, 3), 128, np.uint8))) == 0  # still runs: not closed with the twin
        feed.remove_model("other")
        assert len(feed.detectors) == 1
    finally:
        runtime.shutdown()
    assert len(feed.detectors) == 0  # shutdown lets the last one go


def test_more_models_beside_than_the_cap_is_a_config_error(peak_bundle: Path) -> None:
    with pytest.raises(ValidationError, match="max_models_beside is 1"):
        DeviceConfig.model_validate({"model": str(peak_bundle), "max_models_beside": 1,
                                     "models": [{"name": "a", "bundle": str(peak_bundle)}, {"name": "b", "bundle": str(peak_bundle)}]})
