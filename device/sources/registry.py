"""One URI picks the source: `open_source("synthetic://?seed=1")`, "/dev/video0", "2", "run.mp4?loop=1",
"rtsp://...", "images/", "shots/*.tif", "gst://nvarguscamerasrc ! ... ! appsink"."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
from pydantic import ValidationError

from device.sources.base import FrameSource, SourceError
from device.sources.images import IMAGE_SUFFIXES, ImageFolderSource
from device.sources.synthetic_modes import mode_config
from device.sources.synthetic_source import SyntheticSource
from device.sources.video import VideoSource

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mjpeg", ".mjpg"})
_TRUE = {"1", "true", "yes", "on"}


def _synthetic(uri: str) -> FrameSource:
    query = {k: v[-1] for k, v in parse_qs(urlsplit(uri).query).items()}
    fps_text = query.pop("fps", "0")
    try:
        fps = float(fps_text)
    except ValueError:
        fps = -1.0
    if not 0 <= fps < float("inf"):
        raise SourceError(f"{uri}: bad synthetic option fps={fps_text!r}: give frames per second as a number "
                          "(0 = as fast as possible)", permanent=True)
    mode = query.pop("mode", "brightfield")
    try:
        config = mode_config(mode, dict(query))
    except ValidationError as exc:
        raise SourceError(f"{uri}: bad synthetic option ({exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}); "
                          "known options: mode, seed, density, width, height, fps, drift, ...", permanent=True) from exc
    except ValueError as exc:  # an unknown mode
        raise SourceError(f"{uri}: {exc}", permanent=True) from exc
    return SyntheticSource(config, fps)


def _split_options(uri: str) -> tuple[str, dict[str, str]]:
    """`path?loop=1` -> (path, {'loop': '1'}), unless the '?' is part of an existing name."""
    if "?" not in uri or Path(uri).exists():
        return uri, {}
    path, _, query = uri.partition("?")
    return path, {k: v[-1] for k, v in parse_qs(query).items()}


def _local(uri: str) -> FrameSource:
    path_text, options = _split_options(uri.removeprefix("file://"))
    loop = options.get("loop", "1").lower() in _TRUE
    path = Path(path_text)
    suffix = path.suffix.lower()
    if re.fullmatch(r"/dev/video\d+", path_text):
        return VideoSource(path_text, live=True)
    if suffix in VIDEO_SUFFIXES:
        return VideoSource(path_text, live=False, loop=options.get("loop", "0").lower() in _TRUE)
    if path.is_dir() or any(c in path_text for c in "*?[") or suffix in IMAGE_SUFFIXES or not suffix:
        return ImageFolderSource(path_text, loop=loop)
    raise SourceError(f"{uri}: unknown kind of file '{suffix}': give a video ({', '.join(sorted(VIDEO_SUFFIXES))}), "
                      "an image folder or glob, a camera (/dev/video0) or a stream URL", permanent=True)


def open_source(uri: str) -> FrameSource:
    """Build (but do not open) the source named by `uri`; SourceError(permanent=True) when the URI is wrong."""
    uri = uri.strip()
    if not uri:
        raise SourceError("empty source: set `source` (e.g. synthetic://, /dev/video0, a folder)", permanent=True)
    scheme = urlsplit(uri).scheme.lower() if "://" in uri else ""
    if scheme == "synthetic":
        return _synthetic(uri)
    if scheme in ("rtsp", "rtsps", "http", "https", "rtmp"):
        return VideoSource(uri, live=True, api=cv2.CAP_FFMPEG)
    if scheme == "gst":
        return VideoSource(uri[len("gst://"):], live=True, api=cv2.CAP_GSTREAMER)
    if uri.isdigit():
        return VideoSource(int(uri), live=True)
    if scheme in ("", "file"):
        return _local(uri)
    raise SourceError(f"{uri}: unknown source scheme '{scheme}://': use synthetic://, rtsp://, gst://, "
                      "/dev/videoN, a camera index, a video file or an image folder/glob", permanent=True)
