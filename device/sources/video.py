"""OpenCV VideoCapture sources: V4L2 cameras, video files, RTSP streams and raw GStreamer pipelines."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from device.sources.base import SourceError


class VideoSource:
    """One cv2.VideoCapture. Cameras and streams are live (newest frame wins); files are not, and
    either loop or end."""

    def __init__(self, target: str | int, live: bool, loop: bool = False, api: int = cv2.CAP_ANY) -> None:
        self.name = str(target)
        self.live = live
        self._target = target
        self._loop = loop
        self._api = api
        self._cap: Any = None

    def open(self) -> None:
        self.close()
        cap = cv2.VideoCapture(self._target, self._api)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.name}: cannot open (camera unplugged, stream down or file missing?)")
        self._cap = cap

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            raise SourceError(f"{self.name}: not open")
        ok, image = self._cap.read()
        if ok and image is not None:
            return np.asarray(image)
        if self.live:
            raise SourceError(f"{self.name}: the stream stopped delivering frames")
        if self._loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._cap.read()
            if ok and image is not None:
                return np.asarray(image)
            raise SourceError(f"{self.name}: cannot rewind the video file")
        return None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
