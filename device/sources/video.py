"""OpenCV VideoCapture sources: V4L2 cameras, video files, RTSP streams and raw GStreamer pipelines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from device.redact import redact
from device.sources.base import SourceError


class VideoSource:
    """One cv2.VideoCapture. Cameras and streams are live (newest frame wins); files are not, and
    either loop or end."""

    def __init__(self, target: str | int, live: bool, loop: bool = False, api: int = cv2.CAP_ANY) -> None:
        self.name = redact(str(target))  # shown in /healthz, errors, events and logs: no credentials
        self.live = live
        self._target = target
        self._loop = loop
        self._api = api
        self._cap: Any = None
        self._expected = 0  # frames a file says it holds (0: unknown)
        self._read = 0  # frames read from the file in this pass

    def open(self) -> None:
        self.close()
        if not self.live and not Path(str(self._target)).is_file():
            raise SourceError(f"{self.name}: the video file does not exist", permanent=True)
        cap = cv2.VideoCapture(self._target, self._api)
        if not cap.isOpened():
            cap.release()
            if not self.live:  # there, but no decoder can start on it: retrying changes nothing
                raise SourceError(f"{self.name}: file ended early / unreadable (damaged or truncated video file?)",
                                  permanent=True)
            raise SourceError(f"{self.name}: cannot open (camera unplugged or stream down?)")
        self._cap = cap
        self._expected = 0 if self.live else max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        self._read = 0

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            raise SourceError(f"{self.name}: not open")
        ok, image = self._cap.read()
        if ok and image is not None:
            self._read += 1
            return np.asarray(image)
        if self.live:
            raise SourceError(f"{self.name}: the stream stopped delivering frames")
        self._check_complete()
        self._read = 0
        if self._loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._cap.read()
            if ok and image is not None:
                return np.asarray(image)
            raise SourceError(f"{self.name}: cannot rewind the video file")
        return None

    def _check_complete(self) -> None:
        """A file that stops well before the frame count in its header is truncated or damaged: say
        so (permanently) instead of ending as if the recording were complete. Counts estimated
        from the duration may be a frame or two off, hence the tolerance."""
        if self._expected and self._read < self._expected - max(2, self._expected // 50):
            raise SourceError(f"{self.name}: file ended early / unreadable after {self._read} of "
                              f"{self._expected} frames (damaged or truncated video file?)", permanent=True)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
