"""One URI picks the source: `open_source("synthetic://?seed=1")`, "/dev/video0", "2", "run.mp4?loop=1",
"rtsp://...", "images/", "shots/*.tif", "acq/?mode=acquisition", "pylon://<serial>?pixel_format=Mono12",
"genicam://<device id>?exposure_us=5000",
"gst://nvarguscamerasrc ! ... ! appsink"."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
from pydantic import ValidationError

from device.sources.acquisition import AcquisitionFolderSource
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


FOLDER_OPTIONS = frozenset({"loop", "mode", "channel", "journal", "settle_s", "give_up_s"})


def _number(uri: str, options: dict[str, str], name: str, default: float) -> float:
    text = options.get(name, str(default))
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise SourceError(f"{uri}: bad option {name}={text!r}: give seconds as a number >= 0", permanent=True)
    return value


def _folder(uri: str, path_text: str, options: dict[str, str]) -> FrameSource:
    """`folder?mode=acquisition&journal=...&settle_s=1` (each new file once) or the cycling slide
    show (`mode=cycle`, the default; `loop=0` for one pass); `channel=1` or `channel=GFP` keeps one
    channel of multi-channel stacks."""
    unknown = sorted(set(options) - FOLDER_OPTIONS)
    if unknown:
        raise SourceError(f"{uri}: unknown folder option {', '.join(unknown)}: known are {', '.join(sorted(FOLDER_OPTIONS))}", permanent=True)
    channel_text = options.get("channel")
    channel: int | str | None = int(channel_text) if channel_text and channel_text.isdigit() else channel_text
    mode = options.get("mode", "cycle")
    if mode == "acquisition":
        if any(c in path_text for c in "*?["):
            raise SourceError(f"{uri}: mode=acquisition watches a folder: give the folder, not a glob", permanent=True)
        settle = _number(uri, options, "settle_s", 1.0)
        return AcquisitionFolderSource(path_text, options.get("journal", ""), settle, _number(uri, options, "give_up_s", 30.0), channel)
    if mode != "cycle":
        raise SourceError(f"{uri}: unknown folder mode {mode!r}: use mode=cycle (a slide show) or mode=acquisition (each new file once)", permanent=True)
    return ImageFolderSource(path_text, loop=options.get("loop", "1").lower() in _TRUE, channel=channel)


def _local(uri: str) -> FrameSource:
    path_text, options = _split_options(uri.removeprefix("file://"))
    path = Path(path_text)
    suffix = path.suffix.lower()
    if re.fullmatch(r"/dev/video\d+", path_text):
        return VideoSource(path_text, live=True)
    if suffix in VIDEO_SUFFIXES:
        return VideoSource(path_text, live=False, loop=options.get("loop", "0").lower() in _TRUE)
    if path.is_dir() or any(c in path_text for c in "*?[") or suffix in IMAGE_SUFFIXES or not suffix:
        return _folder(uri, path_text, options)
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
    if scheme == "pylon":
        from device.sources.pylon import PylonSource, parse_uri

        return PylonSource(*parse_uri(uri))
    if scheme == "genicam":
        from device.sources.aravis import AravisSource
        from device.sources.aravis import parse_uri as parse_genicam_uri

        return AravisSource(*parse_genicam_uri(uri))
    if scheme == "gst":
        return VideoSource(uri[len("gst://"):], live=True, api=cv2.CAP_GSTREAMER)
    if uri.isdigit():
        return VideoSource(int(uri), live=True)
    if scheme in ("", "file"):
        return _local(uri)
    raise SourceError(f"{uri}: unknown source scheme '{scheme}://': use synthetic://, rtsp://, gst://, pylon://, genicam://, "
                      "/dev/videoN, a camera index, a video file or an image folder/glob", permanent=True)
