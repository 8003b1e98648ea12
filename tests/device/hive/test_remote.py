"""Remote inference against a real KServe v2 server on loopback: Triton (PyTriton, `python -m
trainer serve`) serving the test peak detector bundle."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from device.config import DeviceConfig
from device.hive.settings import HiveSettings
from device.inference.backend import BackendContext
from device.inference.detector import Detector, load_detector
from device.runtime import Runtime
from device.sources.capture import Capture
from tests.device.hive.frames import PacedFrames, scope_frames
from tests.device.hive.server import HiveServer
from tests.device.runtime_helpers import facade, start_runtime, wait_for


def remote(peak_bundle: Path, tmp_path: Path, url: str, **hive: object) -> Detector:
    settings = HiveSettings.model_validate({"endpoints": [url], "deadline_ms": 2000, "probe_interval_s": 0.3, **hive})
    detector = load_detector(peak_bundle, "triton", tmp_path, None, BackendContext(settings))
    assert wait_for(lambda: detector.backend.router.best() is not None or _reason(detector) != "not probed yet")  # type: ignore[attr-defined]
    return detector


def _reason(detector: Detector) -> str:
    return str(detector.backend.health()["endpoints"][0]["reason"])  # type: ignore[attr-defined]


def test_remote_boxes_equal_the_local_backend_on_the_same_frames(hive: HiveServer, peak_bundle: Path, tmp_path: Path) -> None:
    local = load_detector(peak_bundle, "onnx", tmp_path)
    far = remote(peak_bundle, tmp_path, hive.url)
    for frame in scope_frames(12):
        mine, run = local.detect(frame), far.analyse(frame)
        theirs = run.detections
        assert run.route == f"remote:{hive.url}"
        assert len(theirs) == len(mine) > 0
        np.testing.assert_allclose(theirs.xyxy, mine.xyxy, atol=1e-3)
        assert run.fields["bytes_sent"] == 240 * 320 * 3 * 4  # the float32 tensor
    far.backend.close()  # type: ignore[attr-defined]


def test_jpeg_transport_sends_far_fewer_bytes_and_finds_the_same_objects(hive: HiveServer, peak_bundle: Path, tmp_path: Path) -> None:
    local = load_detector(peak_bundle, "onnx", tmp_path)
    far = remote(peak_bundle, tmp_path, hive.url, transport="jpeg", jpeg_quality=95)
    counts = []
    for frame in scope_frames(12):
        run = far.analyse(frame)
        theirs = run.detections
        assert run.route == f"remote:{hive.url}", far.backend.health()  # type: ignore[attr-defined]
        assert 0 < int(run.fields["bytes_sent"]) < 240 * 320 * 3 * 4 / 5
        counts.append((len(theirs), len(local.detect(frame))))
    # lossy JPEG: this test detector reacts to single-pixel contrast, so a few specks come and go
    # (the trained demo model differs by at most one object a frame: bench/hive_remote.py)
    assert all(abs(a - b) <= 0.2 * b for a, b in counts), counts
    far.backend.close()  # type: ignore[attr-defined]


DEADLINE_MS = 1500  # generous: the test machine is shared, a loaded second must not read as "server gone"


def _hive_runtime(peak_bundle: Path, tmp_path: Path, url: str, source: PacedFrames) -> tuple[Runtime, object]:
    config = DeviceConfig.model_validate({
        "model": str(peak_bundle), "backend": "triton", "data_dir": str(tmp_path), "port": 0, "status_interval_s": 0.5,
        "hive": {"endpoints": [url], "deadline_ms": DEADLINE_MS, "probe_interval_s": 0.3}})
    return start_runtime(config, Capture(source))


def test_the_device_loop_counts_on_the_hive_what_it_counts_locally(hive: HiveServer, peak_bundle: Path, tmp_path: Path) -> None:
    frames = scope_frames(20)
    local = load_detector(peak_bundle, "onnx", tmp_path)
    expected = [len(local.detect(f)) for f in frames]
    runtime, thread = _hive_runtime(peak_bundle, tmp_path, hive.url, PacedFrames(frames, period=0.3, cycles=1))
    thread.join(timeout=60)  # type: ignore[attr-defined]
    hive_state = facade(runtime).health()["hive"]
    runtime.shutdown()
    assert hive_state["configured"] and hive_state["models"]["main"]["endpoints"][0]["ready"]
    assert hive_state["models"]["main"]["route"] == f"remote:{hive.url}" and hive_state["models"]["main"]["local"].startswith("onnx")
    history = runtime.parts.outbox.history(600)
    assert [h["frame_index"] for h in history] == list(range(20))
    assert all(h["inference"] == f"remote:{hive.url}" for h in history), [h["inference"] for h in history]
    assert [h["count"] for h in history] == expected


def test_bad_endpoints_keep_the_device_on_its_local_model_and_say_why(peak_bundle: Path, tmp_path: Path) -> None:
    from tests.device.hive.server import free_port

    nobody = f"http://127.0.0.1:{free_port()}"
    far = remote(peak_bundle, tmp_path, nobody)
    assert "unreachable" in _reason(far) or "Connection" in _reason(far), _reason(far)
    local = load_detector(peak_bundle, "onnx", tmp_path)
    frame = scope_frames(1)[0]
    run = far.analyse(frame)
    assert len(run.detections) == len(local.detect(frame)) and run.route == "fallback"
    far.backend.close()  # type: ignore[attr-defined]


def test_another_model_version_on_the_server_is_not_used(hive: HiveServer, tmp_path: Path) -> None:
    from tests.device.bundles import peak_detector_bundle

    newer = peak_detector_bundle(tmp_path / "peaks-2", version="2.0.0")
    far = remote(newer, tmp_path, hive.url)
    time.sleep(0.5)
    assert "peaks.2.0.0" in _reason(far) and not far.backend.router.states[hive.url].ready  # type: ignore[attr-defined]
    assert far.analyse(scope_frames(1)[0]).route == "fallback"
    far.backend.close()  # type: ignore[attr-defined]


@pytest.mark.slow
def test_server_killed_mid_run_falls_back_at_once_and_returns(peak_bundle: Path, tmp_path: Path) -> None:
    """No frame lost, none zero-counted: every frame has the count the local model gives it."""
    from device.hive.names import triton_model_name
    from device.models.bundle import load_bundle

    name = triton_model_name(load_bundle(peak_bundle).card)
    server = HiveServer([peak_bundle], tmp_path / "serve.log").start([name, name + "_jpeg"])
    frames = scope_frames(20)
    local = load_detector(peak_bundle, "onnx", tmp_path)
    expected = [len(local.detect(f)) for f in frames]
    runtime, thread = _hive_runtime(peak_bundle, tmp_path, server.url, PacedFrames(frames, period=0.03, cycles=1000))
    backend = runtime.parts.feed.detector.backend  # type: ignore[union-attr]
    try:
        assert wait_for(lambda: backend.remote_frames >= 20, 30)  # type: ignore[attr-defined]
        server.kill()
        assert wait_for(lambda: backend.fallback_frames >= 20, 30)  # type: ignore[attr-defined]
        back_from = backend.remote_frames  # type: ignore[attr-defined]
        server.start([name, name + "_jpeg"])
        assert wait_for(lambda: backend.remote_frames >= back_from + 20, 60)  # type: ignore[attr-defined]
    finally:
        runtime.stop()
        thread.join(timeout=10)  # type: ignore[attr-defined]
        runtime.shutdown()
        server.kill()
    history = runtime.parts.outbox.history(3600)
    indices = [h["frame_index"] for h in history]
    assert indices == list(range(len(history)))  # no frame lost
    assert [h["count"] for h in history] == [expected[i % 20] for i in indices]  # none zero-counted
    routes = [h["inference"] for h in history]
    first_fallback = routes.index("fallback")
    assert first_fallback >= 15 and all(r.startswith("remote:") for r in routes[:first_fallback])
    assert routes[-1].startswith("remote:")  # back on the hive
    # the killed server refuses at once: that frame is answered locally well within one deadline
    assert history[first_fallback]["latency_ms"] < DEADLINE_MS


@pytest.mark.parametrize("boxes", [np.zeros((1, 5, 3), np.float32), np.full((1, 5, 4), np.nan, np.float32)], ids=["3-column boxes", "NaN boxes"])
def test_a_server_answering_malformed_tensors_is_not_believed(peak_bundle: Path, tmp_path: Path, boxes: np.ndarray) -> None:
    from device.hive.names import triton_model_name
    from device.models.bundle import load_bundle
    from tests.device.bundles import malformed_peaks_bundle

    broken = malformed_peaks_bundle(tmp_path / "broken", boxes)
    name = triton_model_name(load_bundle(peak_bundle).card)
    server = HiveServer([broken], tmp_path / "serve.log").start([name, name + "_jpeg"])
    try:
        far = remote(peak_bundle, tmp_path, server.url)
        local = load_detector(peak_bundle, "onnx", tmp_path)
        for frame in scope_frames(3):
            run = far.analyse(frame)
            assert len(run.detections) == len(local.detect(frame)) > 0  # the local model's answer, not the server's
            assert run.route == "fallback"
        assert "malformed outputs" in _reason(far), _reason(far)
        far.backend.close()  # type: ignore[attr-defined]
    finally:
        server.kill()


def test_a_server_that_is_not_kserve_v2_is_not_used(peak_bundle: Path, tmp_path: Path) -> None:
    from tests.conftest import INFLUX_V1

    far = remote(peak_bundle, tmp_path, INFLUX_V1)  # an HTTP server, but InfluxDB, not an inference server
    assert not far.backend.router.states[INFLUX_V1].ready and _reason(far) != "not probed yet"  # type: ignore[attr-defined]
    assert far.analyse(scope_frames(1)[0]).route == "fallback"
    far.backend.close()  # type: ignore[attr-defined]


def test_without_a_local_model_a_frame_the_hive_did_not_answer_is_not_analysed(peak_bundle: Path, tmp_path: Path) -> None:
    from device.analysis import NO_MODEL
    from device.pipeline import ModelSlot, Pipeline, PipelineOptions
    from device.sources.capture import Frame
    from tests.device.hive.server import free_port

    settings = HiveSettings(endpoints=[f"http://127.0.0.1:{free_port()}"], local_backend="none")  # type: ignore[call-arg]
    slot = ModelSlot(lambda path: load_detector(path, "triton", tmp_path, None, BackendContext(settings)))
    with pytest.raises(Exception, match="fails on a test frame"):  # warm-up needs an answer: no hive, no local model
        slot.load(peak_bundle)
    assert slot.detector is None and "hive" in slot.error
    analysis = Pipeline(PipelineOptions(), slot).analyse(Frame(scope_frames(1)[0], 0, 0.0, 0.0))
    assert analysis.detections is None and analysis.inference == NO_MODEL  # no model, never a count of 0


def test_a_server_slower_than_the_deadline_is_left_for_the_local_model(hive: HiveServer, peak_bundle: Path, tmp_path: Path) -> None:
    far = remote(peak_bundle, tmp_path, hive.url, deadline_ms=1)  # no server answers in 1 ms
    local = load_detector(peak_bundle, "onnx", tmp_path)
    frame = scope_frames(1)[0]
    run = far.analyse(frame)
    assert len(run.detections) == len(local.detect(frame)) and run.route == "fallback"
    assert "too slow" in _reason(far) or "deadline" in _reason(far), _reason(far)
    far.backend.close()  # type: ignore[attr-defined]
