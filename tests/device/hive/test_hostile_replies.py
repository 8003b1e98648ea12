"""A hive server is untrusted input: a fake KServe v2 server on loopback plays every hostile reply
(a claimed 1 GB tensor, a slow drip, NaN scores, classes the bundle lacks, boxes of 1e30, a million
detections). The device must answer the same frame on its local model, say why in /healthz
(`backend.health()`), and without a local model record nothing rather than a false zero."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from device.hive.settings import HiveSettings
from device.inference.backend import BackendContext
from device.inference.detector import Detector, load_detector
from device.inference.triton_backend import HiveUnavailable, TritonBackend
from tests.device.hive.fake_kserve import FakeKServe
from tests.device.hive.frames import scope_frames
from tests.device.runtime_helpers import wait_for

DEADLINE_MS = 400


@pytest.fixture(scope="module")
def fake(peak_bundle: Path) -> Iterator[FakeKServe]:
    server = FakeKServe(peak_bundle).start()
    yield server
    server.stop()


def hive_detector(bundle: Path, tmp_path: Path, url: str, **hive: object) -> Detector:
    """A detector on the hive backend, once the endpoint's first probe is in."""
    settings = HiveSettings.model_validate({"endpoints": [url], "deadline_ms": DEADLINE_MS, "probe_interval_s": 0.2, **hive})
    detector = load_detector(bundle, "triton", tmp_path, None, BackendContext(settings))
    return detector


def backend(detector: Detector) -> TritonBackend:
    assert isinstance(detector.backend, TritonBackend)
    return detector.backend


def endpoint_reason(detector: Detector) -> str:
    return str(backend(detector).health()["endpoints"][0]["reason"])


def ready(detector: Detector) -> bool:
    return backend(detector).router.best() is not None


def test_an_honest_server_gives_the_local_boxes(fake: FakeKServe, peak_bundle: Path, tmp_path: Path) -> None:
    """The fake itself, and the device's own KServe client: boxes equal the local backend's."""
    fake.mode = "honest"
    local = load_detector(peak_bundle, "onnx", tmp_path)
    far = hive_detector(peak_bundle, tmp_path, fake.url)
    try:
        for frame in scope_frames(4):
            run = far.analyse(frame)
            mine = local.detect(frame)
            assert run.route == f"remote:{fake.url}"
            assert len(run.detections) == len(mine) > 0
            np.testing.assert_allclose(run.detections.xyxy, mine.xyxy, atol=1e-4)
    finally:
        backend(far).close()


@pytest.mark.parametrize(("mode", "why"), [
    ("huge_claim", "more than the"),
    ("huge_unframed", "more than"),
    ("slow_drip", "too slow"),
    ("nan_scores", "NaN"),
    ("class_out_of_range", "class id 7"),
    ("huge_boxes", "outside the 320x240 frame"),
    ("million_detections", "more than the"),
])
def test_a_hostile_reply_falls_back_on_the_same_frame_and_says_why(
        fake: FakeKServe, peak_bundle: Path, tmp_path: Path, mode: str, why: str) -> None:
    local = load_detector(peak_bundle, "onnx", tmp_path)
    far = hive_detector(peak_bundle, tmp_path, fake.url)
    frame = scope_frames(1, seed=9)[0]
    expected = local.detect(frame)
    fake.mode = mode
    try:
        assert wait_for(lambda: ready(far))
        tracemalloc.start()
        start = time.monotonic()
        run = far.analyse(frame)
        elapsed = time.monotonic() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert run.route == "fallback"
        assert len(run.detections) == len(expected) > 0  # the local model's answer on this frame
        np.testing.assert_allclose(run.detections.xyxy, expected.xyxy)
        assert why in endpoint_reason(far), endpoint_reason(far)
        assert why in backend(far).health()["fallback_reason"]
        assert peak < 16 << 20, f"{peak / 1e6:.0f} MB held for one reply"  # the 1 GB claim is never read
        assert elapsed < DEADLINE_MS / 1000 + 1.5, f"{elapsed:.2f} s for one frame"  # one deadline, not one per read
    finally:
        fake.mode = "honest"
        backend(far).close()


@pytest.mark.parametrize("mode", ["slow_drip", "nan_scores", "class_out_of_range", "huge_boxes", "huge_claim"])
def test_without_a_local_model_a_hostile_reply_is_no_count(fake: FakeKServe, peak_bundle: Path, tmp_path: Path, mode: str) -> None:
    """No fallback: the frame raises (the pipeline records it as not analysed), never 0 objects."""
    fake.mode = "honest"
    far = hive_detector(peak_bundle, tmp_path, fake.url, local_backend="none")
    fake.mode = mode
    warm_up_runs = backend(far).remote_frames
    try:
        assert wait_for(lambda: ready(far))
        with pytest.raises(HiveUnavailable, match="local_backend is 'none'"):
            far.analyse(scope_frames(1)[0])
        assert backend(far).unanswered_frames == 1 and backend(far).remote_frames == warm_up_runs
    finally:
        fake.mode = "honest"
        backend(far).close()


def test_after_a_hostile_reply_the_endpoint_is_used_again_once_its_probe_passes(
        fake: FakeKServe, peak_bundle: Path, tmp_path: Path) -> None:
    far = hive_detector(peak_bundle, tmp_path, fake.url)
    frame = scope_frames(1)[0]
    try:
        fake.mode = "nan_scores"
        assert far.analyse(frame).route == "fallback"
        fake.mode = "honest"
        assert wait_for(lambda: ready(far))
        assert far.analyse(frame).route == f"remote:{fake.url}"
    finally:
        backend(far).close()


def test_without_input_name_the_hive_gets_the_graphs_input_name(fake: FakeKServe, peak_bundle: Path, tmp_path: Path) -> None:
    """local_backend none, model.json without input.name: the request names the ONNX graph's
    input (`image`), as the local path would, and the server accepts it."""
    import json

    from device.models.bundle import load_bundle

    assert load_bundle(peak_bundle).card.input.name is None
    assert "name" not in json.loads((peak_bundle / "model.json").read_text())["input"]
    fake.mode = "honest"
    seen = len(fake.inputs_seen)
    far = hive_detector(peak_bundle, tmp_path, fake.url, local_backend="none")
    try:
        assert far.analyse(scope_frames(1)[0]).route == f"remote:{fake.url}"
        assert set(fake.inputs_seen[seen:]) == {"image"}
    finally:
        backend(far).close()


def test_status_fields_report_the_server_and_the_fallback_rate_since_the_last_call(
        fake: FakeKServe, peak_bundle: Path, tmp_path: Path) -> None:
    fake.mode = "honest"
    far = hive_detector(peak_bundle, tmp_path, fake.url)
    frames = scope_frames(3)
    try:
        for frame in frames:
            far.analyse(frame)
        first = backend(far).status_fields()
        assert first["hive_endpoint"] == fake.url and first["hive_state"] == "remote"
        assert first["hive_remote_frames"] == 5 and first["hive_fallback_frames"] == 0  # 2 warm-up runs + 3 frames
        assert first["hive_fallback_rate"] == 0.0 and float(first["hive_remote_ms"]) > 0
        fake.mode = "nan_scores"
        far.analyse(frames[0])  # falls back, endpoint set aside until its probe
        far.analyse(frames[1])  # not tried: still set aside (or tried and refused again)
        second = backend(far).status_fields()
        assert second["hive_state"] == "fallback" and second["hive_endpoint"] == ""
        assert second["hive_fallback_frames"] == 2 and second["hive_fallback_rate"] == 1.0
        third = backend(far).status_fields()
        assert "hive_fallback_rate" not in third  # no frame since the last call: no rate at all, not 0
    finally:
        fake.mode = "honest"
        backend(far).close()
