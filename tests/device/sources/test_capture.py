import shutil
import time
from pathlib import Path

import cv2
import numpy as np

from device.sources.capture import Capture
from device.sources.images import ImageFolderSource
from device.sources.registry import open_source
from tests.device.runtime_helpers import wait_for


def test_live_source_keeps_only_the_newest_frame_and_counts_drops() -> None:
    capture = Capture(open_source("synthetic://?width=160&height=120&fps=100")).start()
    try:
        assert wait_for(lambda: capture.frames >= 20)  # nobody reads: each new frame replaces the last
        frame = capture.get(timeout=2)
        assert frame is not None and frame.index >= 19
        assert capture.dropped >= frame.index  # every frame before the one we got was dropped
    finally:
        capture.stop()


def test_non_live_source_never_drops() -> None:
    capture = Capture(open_source("synthetic://?width=160&height=120")).start()
    try:
        indices = []
        for _ in range(5):
            frame = capture.get(timeout=2)
            assert frame is not None
            indices.append(frame.index)
            time.sleep(0.05)
        assert indices == [0, 1, 2, 3, 4] and capture.dropped == 0
    finally:
        capture.stop()


def _fill(folder: Path, value: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(2):
        cv2.imwrite(str(folder / f"f{i}.png"), np.full((16, 16), value, np.uint8))


def test_folder_that_is_removed_and_comes_back_is_reconnected(tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    _fill(folder, 50)
    events: list[tuple[str, str]] = []
    capture = Capture(ImageFolderSource(str(folder)), backoff=(0.05, 0.2), events=lambda k, m: events.append((k, m))).start()
    try:
        first = capture.get(timeout=3)
        assert first is not None and int(first.image.flat[0]) == 50
        shutil.rmtree(folder)  # the share went away
        assert wait_for(lambda: capture.get(0.1) is None and capture.state == "reconnecting")
        assert capture.error and "no images" in capture.error
        attempts = capture.reconnects
        _fill(folder, 90)  # and it is back, with new images
        assert wait_for(lambda: capture.state == "ok")

        def fresh_frame() -> bool:
            frame = capture.get(0.2)
            return frame is not None and int(frame.image.flat[0]) == 90

        assert wait_for(fresh_frame)
        assert capture.reconnects >= attempts
        assert [k for k, _ in events] == ["source_lost", "source_restored"]
    finally:
        capture.stop()


def test_emptied_folder_reports_and_recovers(tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    _fill(folder, 20)
    capture = Capture(ImageFolderSource(str(folder)), backoff=(0.05, 0.1)).start()
    try:
        assert capture.get(timeout=3) is not None
        for path in folder.iterdir():
            path.unlink()
        assert wait_for(lambda: capture.get(0.05) is None and capture.state == "reconnecting")
        _fill(folder, 30)
        assert wait_for(lambda: capture.state == "ok")
    finally:
        capture.stop()


def test_finite_source_ends_cleanly(tmp_path: Path) -> None:
    _fill(tmp_path, 10)
    capture = Capture(ImageFolderSource(str(tmp_path), loop=False)).start()
    try:
        got = [capture.get(timeout=2) for _ in range(2)]
        assert all(f is not None for f in got)
        assert wait_for(lambda: capture.finished)
    finally:
        capture.stop()


def test_permanent_error_marks_failed() -> None:
    class Broken:
        name, live = "broken", True

        def open(self) -> None:
            from device.sources.base import SourceError

            raise SourceError("bad pipeline", permanent=True)

        def read(self) -> None:
            return None

        def close(self) -> None:
            pass

    capture = Capture(Broken()).start()
    try:
        assert wait_for(lambda: capture.state == "failed") and capture.error == "bad pipeline"
    finally:
        capture.stop()
