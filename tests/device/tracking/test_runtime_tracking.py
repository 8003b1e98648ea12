"""Tracking inside the running device: points in the outbox, heartbeat, live stats, the stream
overlay, and a hot model switch that ends every open track under the old model."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.health import status_fields
from device.metrics.points import Point
from device.runtime import Runtime
from device.tracking.overlay import TrackOverlay
from tests.device.runtime_helpers import facade, wait_for


@pytest.fixture
def stored(running: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[Point]:
    """Every point the runtime commits to its outbox from now on."""
    seen: list[Point] = []
    original = running.parts.outbox.add

    def keep(points: list[Point]) -> None:
        seen.extend(points)
        original(points)

    monkeypatch.setattr(running.parts.outbox, "add", keep)
    return seen


def test_tracks_on_the_stream_live_stats_and_heartbeat(running: Runtime, stored: list[Point]) -> None:
    assert running.parts.tracking() is not None
    running.parts.tracking().set_line([160, 0, 160, 240])
    assert wait_for(lambda: facade(running).live_stats()["tracking"]["unique_total"] > 0)

    def _overlay_has_line() -> bool:
        latest = facade(running).latest()
        overlay = latest.analyses[0].extra.get("tracking") if latest is not None and latest.analyses else None
        return isinstance(overlay, TrackOverlay) and overlay.line is not None

    assert wait_for(_overlay_has_line)  # the frame after the line was set
    latest = facade(running).latest()
    assert latest is not None and latest.analyses
    overlay = latest.analyses[0].extra["tracking"]
    assert isinstance(overlay, TrackOverlay) and overlay.ids is not None and len(overlay.ids) == len(latest.detections)
    assert overlay.line == (160.0, 0.0, 160.0, 240.0)
    assert facade(running).annotated_jpeg() is not None
    status = status_fields(running.parts)  # what the heartbeat writes
    assert status["unique_count"] == running.parts.tracking().live()["unique_total"] or status["unique_count"] > 0
    assert "open_tracks" in status


def test_a_model_switch_ends_open_tracks_under_the_old_model(running: Runtime, stored: list[Point], peak_bundle_v2: Path) -> None:
    assert wait_for(lambda: running.parts.tracking() is not None and running.parts.tracking().live()["unique_total"] > 0)
    running.parts.feed.switch_model(peak_bundle_v2)
    assert wait_for(lambda: any(p.measurement == "frame" and p.tags.get("model") == "peaks-b" for p in stored))
    tracks = [p for p in stored if p.measurement == "track"]
    assert tracks and {p.tags["model"] for p in tracks} == {"peaks"}, "open tracks end when the model changes"
    switch_us = min(p.ts_us for p in stored if p.measurement == "frame" and p.tags.get("model") == "peaks-b")
    assert all(p.ts_us <= switch_us + 1000 for p in tracks)
    assert wait_for(lambda: running.parts.tracking() is not None and running.parts.tracking().live()["unique_total"] > 0)
    running.stop()
    running.end_tracks()  # what shutdown does first
    later = [p for p in stored if p.measurement == "track" and p.tags["model"] == "peaks-b"]
    assert later, "shutdown ends the new model's tracks too"
    # frames come at most 30 a second (the source's pace): a track of n frames lasts at least (n - 1) / 30 s
    assert all(p.fields["frames"] >= 5 and float(p.fields["duration_s"]) >= 0.8 * (int(p.fields["frames"]) - 1) / 30
               for p in tracks + later)
