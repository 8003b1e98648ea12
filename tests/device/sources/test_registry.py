from pathlib import Path

import cv2
import numpy as np
import pytest

from device.sources.base import SourceError
from device.sources.images import ImageFolderSource
from device.sources.registry import open_source
from device.sources.synthetic_source import SyntheticSource
from device.sources.video import VideoSource


@pytest.mark.parametrize(
    ("uri", "kind", "live"),
    [
        ("synthetic://", SyntheticSource, False),
        ("synthetic://?seed=3&density=50&fps=20", SyntheticSource, True),
        ("/dev/video0", VideoSource, True),
        ("0", VideoSource, True),
        ("rtsp://scope.local/stream", VideoSource, True),
        ("gst://nvarguscamerasrc ! nvvidconv ! appsink", VideoSource, True),
        ("/data/run.mp4?loop=1", VideoSource, False),
        ("/data/shots/*.tif", ImageFolderSource, False),
        ("/data/shots", ImageFolderSource, False),
    ],
)
def test_uri_picks_the_source(uri: str, kind: type, live: bool) -> None:
    source = open_source(uri)
    assert isinstance(source, kind) and source.live is live


@pytest.mark.parametrize("uri", ["ftp://x/y", "synthetic://?density=-1", "synthetic://?colour=red", "/data/notes.docx", ""])
def test_bad_uris_fail_permanently_with_advice(uri: str) -> None:
    with pytest.raises(SourceError) as info:
        open_source(uri)
    assert info.value.permanent


def test_synthetic_options_reach_the_microscope() -> None:
    source = open_source("synthetic://?seed=5&width=160&height=120")
    source.open()
    image = source.read()
    assert isinstance(image, np.ndarray) and image.shape == (120, 160, 3)


def test_video_file_plays_then_ends_or_loops(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * (i + 1), np.uint8))
    writer.release()
    once = open_source(str(path))
    once.open()
    assert sum(once.read() is not None for _ in range(4)) == 3
    looped = open_source(f"{path}?loop=1")
    looped.open()
    means = [float(looped.read().mean()) for _ in range(6)]  # type: ignore[union-attr]
    assert means[3] == pytest.approx(means[0], abs=2)
