"""The hive's default deadline on an ordinary lab network: a 150-280 ms round trip at 15 frames/s
(a frame period of 67 ms) must run on the hive, not flap to the local fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.hive.client import ServedModel
from device.hive.router import HiveRouter
from device.hive.settings import HiveSettings
from device.inference.backend import BackendContext
from device.inference.detector import load_detector
from device.models.bundle import ModelCard
from tests.device.hive.fake_kserve import FakeKServe
from tests.device.hive.frames import scope_frames
from tests.device.runtime_helpers import wait_for

FIFTEEN_FPS = 1 / 15


def test_a_lan_round_trip_at_15_fps_runs_on_the_hive_with_the_default_deadline(peak_bundle: Path, tmp_path: Path) -> None:
    fake = FakeKServe(peak_bundle).start()
    fake.latency_s = 0.22  # a LAN round trip of 150-280 ms, here on loopback
    settings = HiveSettings(endpoints=[fake.url])  # type: ignore[call-arg]  # the defaults, as a user leaves them
    detector = load_detector(peak_bundle, "triton", tmp_path, None, BackendContext(settings, period_s=lambda: FIFTEEN_FPS))
    try:
        router: HiveRouter = detector.backend.router  # type: ignore[attr-defined]
        assert wait_for(lambda: router.best() is not None)
        routes = [detector.analyse(frame).route for frame in scope_frames(8)]
        assert routes == [f"remote:{fake.url}"] * 8, router.health()
        health = router.health()
        assert 400 <= health["deadline_ms"] <= 1000 and "measured round trip" in health["deadline"], health
    finally:
        detector.backend.close()  # type: ignore[attr-defined]
        fake.stop()


@pytest.mark.parametrize(("settings", "latencies", "deadline_ms", "basis"), [
    ({}, [], 1000.0, "not measured yet"),
    ({}, [200.0], 500.0, "2.5 x measured round trip 200 ms"),
    ({}, [10.0], 100.0, "1.5 frame periods"),  # a fast server: never under 1.5 frame periods
    ({}, [900.0], 1000.0, "(capped)"),
    ({"deadline_ms": 80}, [200.0], 80.0, "fixed"),
    ({"latency_factor": 0}, [200.0], 100.0, "1.5 frame periods"),  # the old behaviour
])
def test_the_deadline_follows_the_measured_round_trip(settings: dict[str, float], latencies: list[float], deadline_ms: float,
                                                      basis: str) -> None:
    card = ModelCard.model_validate({"name": "cells", "version": "1", "classes": ["cell"], "input": {"width": 32, "height": 32},
                                     "created": "2026-12-01T00:00:00Z"})
    router = HiveRouter(HiveSettings(endpoints=["http://hive:8000"], **settings),  # type: ignore[arg-type]
                        ServedModel(card, "tensor", ("boxes",), 1 << 20), lambda: FIFTEEN_FPS)
    state = router.states["http://hive:8000"]
    state.ready = True
    state.latencies_ms.extend(latencies)
    seconds, why = router.deadline()
    assert seconds * 1000 == pytest.approx(deadline_ms) and basis in why
