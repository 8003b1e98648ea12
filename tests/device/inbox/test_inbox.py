"""The review inbox: which frames it keeps and why, near-copies once, the caps, no orphan files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from device.analysis import Analysis
from device.detections import Detections
from device.inbox.phash import distances, phash
from device.inbox.reasons import DISAGREE, DRIFT, FLICKER, NEAR, SPOT, frame_reasons
from device.inbox.settings import InboxSettings
from device.inbox.store import EVICTED, InboxStore
from device.inbox.watch import Inbox
from device.models.bundle import ModelCard
from device.sources.capture import Frame
from device.tracking.overlay import TrackOverlay

CARD = ModelCard.model_validate({"name": "cells", "version": "3", "classes": ["cell", "debris"], "score_threshold": 0.5,
                                 "input": {"width": 32, "height": 32}, "created": "2026-12-01T00:00:00Z"})


def boxes(n: int, score: float = 0.9, cls: int = 0) -> Detections:
    xy = np.array([[10 * i, 5, 10 * i + 8, 13] for i in range(n)], float).reshape(-1, 4)
    return Detections(xy, np.full(n, score, np.float32), np.full(n, cls, np.int32))


def analysis(n: int, pipeline: str = "main", score: float = 0.9) -> Analysis:
    return Analysis(pipeline, "local", boxes(n, score), CARD)


def flickering(n: int, back: int) -> Analysis:
    """n detections of which `back` were tracks found again after missed frames (the tracking stage's overlay)."""
    return replace(analysis(n), extra={"tracking": TrackOverlay(None, None, 0, reappeared=back)})


def scene(seed: int, noise: float = 0.0) -> np.ndarray:
    """A smooth random field (another seed: another field of view); `noise` imitates the sensor."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.uniform(0, 200, (6, 8)), (320, 240), interpolation=cv2.INTER_CUBIC)
    noisy = base + rng.normal(0, noise, base.shape) if noise else base
    return np.clip(noisy, 0, 255).astype(np.uint8)


def frame(image: np.ndarray, index: int = 0) -> Frame:
    return Frame(image, index, 1.0e9 + index, float(index))


QUIET = InboxSettings(spot_share=0.0, min_interval_s=0.0)


@pytest.mark.parametrize(("analyses", "drifting", "draw", "kinds"), [
    ([analysis(10)], "", 0.5, []),                                       # confident, one model, no alarm
    ([analysis(10, score=0.55)], "", 0.5, [NEAR]),                       # all within 0.1 of the 0.5 threshold
    ([analysis(4, score=0.55)], "", 0.5, []),                            # too few near the threshold
    ([analysis(10), analysis(20, "beside")], "", 0.5, [DISAGREE]),       # 10 vs 20: beyond 3 and 20 %
    ([analysis(10), analysis(12, "beside")], "", 0.5, []),               # within the margin
    ([analysis(10), Analysis("beside", "skipped", None, CARD)], "", 0.5, []),  # the other did not look
    ([analysis(10)], "objects are 40 % larger", 0.5, [DRIFT]),
    ([flickering(10, 4)], "", 0.5, [FLICKER]),                           # 4 of 10 tracks came back after a miss
    ([flickering(10, 1)], "", 0.5, []),                                  # one object blinking is not worth a look
    ([flickering(30, 4)], "", 0.5, []),                                  # 4 of 30: under the 20 % share
    ([analysis(10)], "", 0.001, [SPOT]),                                 # the random draw under the 0.005 share
    ([Analysis("main", "out_of_focus", None, CARD), analysis(30, "beside")], "drift", 0.0, []),  # not analysed: never
])
def test_reasons(analyses: list[Analysis], drifting: str, draw: float, kinds: list[str]) -> None:
    assert [r.kind for r in frame_reasons(analyses, InboxSettings(), drifting, draw)] == kinds


def test_the_hash_keeps_a_scene_and_tells_scenes_apart() -> None:
    one = phash(scene(1))
    assert distances(one, np.array([phash(scene(1, noise=4.0))], np.uint64))[0] <= 6
    others = np.array([phash(scene(s)) for s in range(2, 12)], np.uint64)
    assert distances(one, others).min() > 10


def test_a_model_beside_that_disagrees_gets_its_frames_queued_once(tmp_path: Path) -> None:
    inbox = Inbox(QUIET, InboxStore(tmp_path, 50, 10**9))
    for i in range(30):  # 10 scenes, each seen three times with sensor noise; the model beside counts double on 3
        image = scene(i // 3, noise=3.0)
        beside = analysis(20 if i // 3 in (2, 5, 7) else 10, "beside")
        inbox.consider(frame(image, i), [analysis(10), beside], now=float(i))
    items = inbox.store.items()
    assert sorted(i.record["frame_index"] // 3 for i in items) == [2, 5, 7]
    assert all(i.kinds == [DISAGREE] and "counted 10, beside counted 20" in i.record["reasons"][0]["text"] for i in items)
    assert inbox.duplicates == 6
    kept = items[0].record["models"]
    assert [m["pipeline"] for m in kept] == ["main", "beside"] and len(kept[1]["boxes"]) == 20
    image = inbox.store.image(items[0].id)
    assert image.shape == (240, 320) and image.dtype == np.uint8  # the frame as captured, lossless


def test_the_cap_evicts_the_oldest_spot_check_first_and_says_so(tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    store = InboxStore(tmp_path, 3, 10**9, lambda kind, message: events.append((kind, message)))
    spot = [{"created": 1.0, "reasons": [{"kind": SPOT, "text": ""}]}, {"created": 3.0, "reasons": [{"kind": SPOT, "text": ""}]}]
    drift = {"created": 2.0, "reasons": [{"kind": DRIFT, "text": ""}]}
    first, drifted, second = store.add(scene(1), spot[0]), store.add(scene(2), drift), store.add(scene(3), spot[1])
    newest = store.add(scene(4), {"created": 4.0, "reasons": [{"kind": NEAR, "text": ""}]})
    assert [i.id for i in store.items()] == [drifted.id, second.id, newest.id]  # the oldest spot check went, not the drift frame
    assert store.evicted == 1 and events[0][0] == EVICTED and "oldest spot check" in events[0][1]
    store.add(scene(5), {"created": 5.0, "reasons": [{"kind": NEAR, "text": ""}]})
    assert [i.id for i in store.items()][0] == drifted.id  # the second spot check went next
    assert len(list(tmp_path.iterdir())) == 2 * 3  # a PNG and a record per kept frame, nothing else
    assert first.id not in {p.stem for p in tmp_path.iterdir()}


def test_the_disk_cap_holds(tmp_path: Path) -> None:
    budget = int(len(cv2.imencode(".png", scene(1))[1]) * 2.5)  # room for about two frames
    store = InboxStore(tmp_path, 1000, budget)
    for s in range(1, 8):
        store.add(scene(s), {"created": float(s), "reasons": []})
        assert store.total_bytes() <= budget
    assert 1 <= len(store.items()) <= 3 and store.evicted == 7 - len(store.items())
    assert sum(p.stat().st_size for p in tmp_path.glob("*.png")) == store.total_bytes()


def test_delete_leaves_no_orphan_and_a_restart_removes_half_pairs(tmp_path: Path) -> None:
    store = InboxStore(tmp_path, 10, 10**9)
    kept, gone = store.add(scene(1), {"created": 1.0, "reasons": []}), store.add(scene(2), {"created": 2.0, "reasons": []})
    store.delete(gone.id)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{kept.id}.json", f"{kept.id}.png"]
    (tmp_path / f"{kept.id}.json").unlink()  # a crash between the two writes
    (tmp_path / "20261201T000000-0000abcd.json").write_text("{}")
    assert InboxStore(tmp_path, 10, 10**9).items() == [] and list(tmp_path.iterdir()) == []
    with pytest.raises(KeyError):
        store.get("../etc")


@pytest.mark.parametrize(("field", "value"), [("max_frames", 0), ("max_mb", 0.1), ("near_band", 0.9), ("spot_share", 0.5),
                                              ("hash_distance", 64), ("min_interval_s", -1), ("unknown", 1)])
def test_out_of_range_settings_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        InboxSettings.model_validate({field: value})


def test_out_of_range_settings_are_refused_by_the_config_loader() -> None:
    from device.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="inbox.max_frames"):
        load_config(None, {"SCOPEHIVE_INBOX__MAX_FRAMES": "0"}, {})


def test_the_running_device_keeps_spot_checks_of_analysed_frames(peak_bundle: Path, tmp_path: Path) -> None:
    from device.config import DeviceConfig
    from device.health import health_report, status_fields
    from tests.device.runtime_helpers import start_runtime, wait_for

    config = DeviceConfig.model_validate({"source": "synthetic://?seed=4&width=320&height=240&fps=30", "model": str(peak_bundle),
                                          "data_dir": str(tmp_path), "port": 0,
                                          "inbox": {"spot_share": 0.2, "min_interval_s": 0, "seed": 1,
                                                    "flicker_min": 10_000}})  # the test model's boxes blink
    runtime, thread = start_runtime(config)
    inbox = runtime.parts.inbox
    assert inbox is not None
    try:
        assert wait_for(lambda: len(inbox.store.items()) >= 2)
    finally:
        runtime.stop()
        thread.join(timeout=5)
        runtime.shutdown()
    items = inbox.store.items()
    assert all(SPOT in i.kinds and i.record["models"][0]["pipeline"] == "main" for i in items)
    fields, health = status_fields(runtime.parts), health_report(runtime.parts)
    assert fields["inbox_frames"] == len(items) == health["inbox"]["frames"] and fields["inbox_evicted"] == 0
    assert sorted(p.suffix for p in (tmp_path / "inbox").iterdir()) == sorted([".json", ".png"] * len(items))


def test_a_model_whose_detections_blink_gets_its_frames_queued(tmp_path: Path) -> None:
    """Through the real tracking stage: half of ten cells vanish on every other frame and come back."""
    from device.tracking.settings import TrackingSettings
    from device.tracking.stage import TrackingStage

    stage = TrackingStage(TrackingSettings(min_frames=1, max_missed=3))
    inbox = Inbox(QUIET, InboxStore(tmp_path / "inbox", 50, 10**9))
    kept = []
    for i in range(6):
        shown = boxes(10) if i % 2 == 0 else Detections(boxes(10).xyxy[::2], boxes(5).scores, boxes(5).class_ids)
        tracked = stage(frame(scene(i), i), Analysis("main", "local", shown, CARD))
        kept.append([r.kind for r in inbox.consider(frame(scene(i), i), [tracked], now=float(i))])
    assert kept == [[], [], [FLICKER], [], [FLICKER], []]  # the frames where the five came back
    assert "5 of 10 objects of main came back" in inbox.store.items()[0].record["reasons"][0]["text"]
