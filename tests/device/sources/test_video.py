"""A truncated or damaged video file says so, permanently, instead of ending "normally" or being
retried forever as a lost camera."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.sources.base import SourceError
from device.sources.capture import Capture
from device.sources.registry import open_source
from tests.device.runtime_helpers import wait_for

ROOT = Path(__file__).resolve().parents[3]


def _video(path: Path, fourcc: str, frames: int = 60) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (160, 120))
    for i in range(frames):
        writer.write(np.full((120, 160, 3), (i * 4) % 256, np.uint8))
    writer.release()
    return path


def _truncated(path: Path) -> Path:
    data = path.read_bytes()
    cut = path.with_name(f"cut-{path.name}")
    cut.write_bytes(data[: len(data) // 2])
    return cut


def test_a_complete_file_still_ends_normally(tmp_path: Path) -> None:
    source = open_source(str(_video(tmp_path / "full.avi", "MJPG")))
    source.open()
    read = 0
    while source.read() is not None:
        read += 1
    assert read == 60


def test_a_truncated_avi_reports_file_ended_early(tmp_path: Path) -> None:
    source = open_source(str(_truncated(_video(tmp_path / "run.avi", "MJPG"))))
    source.open()
    read = 0
    with pytest.raises(SourceError, match="file ended early / unreadable after") as caught:
        while source.read() is not None:
            read += 1
    assert caught.value.permanent and 0 < read < 60


def test_a_truncated_mp4_fails_once_not_as_a_lost_camera(tmp_path: Path) -> None:
    capture = Capture(open_source(str(_truncated(_video(tmp_path / "run.mp4", "mp4v")))), (0.05, 0.1)).start()
    try:
        assert wait_for(lambda: capture.state == "failed")
    finally:
        capture.stop()
    assert "file ended early / unreadable" in capture.error and capture.reconnects == 0


def test_the_device_exits_non_zero_on_a_truncated_file(tmp_path: Path) -> None:
    cut = _truncated(_video(tmp_path / "run.avi", "MJPG"))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "device", "run", "--source", str(cut), "--port", "0",
                             "--data-dir", str(tmp_path / "data")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "file ended early / unreadable after" in result.stderr
