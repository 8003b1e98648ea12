"""Any vendor's GigE Vision or USB3 Vision camera through Aravis: `genicam://<device id>?exposure_us=...`.

Aravis is a C library reached through GObject introspection (Debian: gir1.2-aravis-0.8 and
python3-gi). The venv's Python cannot pip-install python3-gi's compiled module, so when `gi` is
not importable, Debian's copy is borrowed if it was built for this very Python version (the
device images and the test machine: Python 3.11). The device id is what `arv-tool-0.8` lists
(`Basler-40012345`, `Aravis-Fake-GV01`) or the camera's IP address; none = the first camera.
Same options as pylon://; 10/12/16-bit formats stay 16-bit; a camera that stops sending
(cable pulled, power lost) raises a SourceError after `timeout_s`, so the capture reconnects.
"""

from __future__ import annotations

import contextlib
import glob
import sys
import sysconfig
import threading
import time
from typing import Any

import cv2
import numpy as np

from device.sources.base import ImageMeta, SourceError, SourceImage
from device.sources.camera_settings import (
    PIXEL_FORMATS,
    RGB_FORMATS,
    CameraSettings,
    out_of_range,
    parse_camera_uri,
)

DEBIAN_GI = "/usr/lib/python3/dist-packages"
_BUFFERS = 4


def parse_uri(uri: str) -> tuple[str, CameraSettings]:
    return parse_camera_uri(uri, CameraSettings)


def load_aravis() -> Any:
    """The Aravis 0.8 module; SourceError(permanent) saying what to install when it is not there."""
    try:
        import gi
    except ImportError:
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        if not glob.glob(f"{DEBIAN_GI}/gi/_gi{suffix}"):
            raise SourceError(f"genicam:// needs Aravis through PyGObject: apt-get install gir1.2-aravis-0.8 python3-gi "
                              f"(Debian's python3-gi must be built for Python {sys.version_info[0]}.{sys.version_info[1]}) "
                              "or pip install PyGObject", permanent=True) from None
        sys.path.append(DEBIAN_GI)  # at the end: the venv's own packages still win
        try:
            import gi
        finally:
            sys.path.remove(DEBIAN_GI)
    try:
        gi.require_version("Aravis", "0.8")
        from gi.repository import Aravis
    except (ValueError, ImportError) as exc:
        raise SourceError(f"genicam:// needs the Aravis 0.8 typelib: apt-get install gir1.2-aravis-0.8 ({exc})", permanent=True) from exc
    return Aravis


class AravisSource:
    """One GenICam camera (GigE Vision or USB3 Vision) through Aravis; live unless trigger=software."""

    def __init__(self, device_id: str, settings: CameraSettings) -> None:
        self.device_id = device_id
        self.settings = settings
        self.name = f"genicam://{device_id}" if device_id else "genicam:// (first camera)"
        self.live = settings.trigger != "software"
        self.camera: Any = None
        self._stream: Any = None
        self._lost = False  # a lost camera is not told to stop: GigE retries that for 12 s

    def open(self) -> None:
        self.close()
        self.settings.check(self.name)
        aravis = load_aravis()
        aravis.update_device_list()
        seen = [aravis.get_device_id(i) for i in range(aravis.get_n_devices())]
        if not self.device_id and not seen:
            raise SourceError(f"{self.name}: no GenICam camera found; is it plugged in, powered and on this network?")
        try:
            self.camera = aravis.Camera.new(self.device_id or seen[0])
        except Exception as exc:  # GLib.Error: not found, or taken by another program
            raise SourceError(f"{self.name}: camera not found or busy ({_message(exc)}; cameras seen: {', '.join(seen) or 'none'})") from exc
        try:
            self._configure(aravis)
            self._stream = self.camera.create_stream(None, None)
            payload = self.camera.get_payload()
            for _ in range(_BUFFERS):
                self._stream.push_buffer(aravis.Buffer.new_allocate(payload))
            self.camera.start_acquisition()
        except SourceError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise SourceError(f"{self.name}: the camera refused to start ({_message(exc)})") from exc

    def _configure(self, aravis: Any) -> None:
        cam, s = self.camera, self.settings
        if s.pixel_format:
            offered = [str(f) for f in cam.dup_available_pixel_formats_as_strings()]
            if s.pixel_format not in offered or s.pixel_format not in PIXEL_FORMATS:
                reason = "is not offered by this camera" if s.pixel_format not in offered else "is not one ScopeHive reads"
                usable = ", ".join(f for f in offered if f in PIXEL_FORMATS)
                raise SourceError(f"{self.name}: pixel_format={s.pixel_format!r} {reason}: choose one of {usable}", permanent=True)
            cam.set_pixel_format_from_string(s.pixel_format)
        current = str(cam.get_pixel_format_as_string())
        if current not in PIXEL_FORMATS:
            raise SourceError(f"{self.name}: the camera is set to {current}, which ScopeHive does not read: "
                              f"give pixel_format= one of {', '.join(PIXEL_FORMATS)}", permanent=True)
        region = s.region()
        if region:
            self._set_region(*region)
        if s.exposure_us is not None:
            if cam.is_exposure_auto_available():
                cam.set_exposure_time_auto(aravis.Auto.OFF)
            self._check("exposure_us", s.exposure_us, cam.get_exposure_time_bounds(), "µs")
            cam.set_exposure_time(s.exposure_us)
        if s.gain is not None:
            if cam.is_gain_auto_available():
                cam.set_gain_auto(aravis.Auto.OFF)
            self._check("gain", s.gain, cam.get_gain_bounds(), "dB")
            cam.set_gain(s.gain)
        if s.fps is not None:
            self._check("fps", s.fps, cam.get_frame_rate_bounds(), "frames/s")
            cam.set_frame_rate(s.fps)
        if s.trigger:
            sources = [str(t) for t in cam.dup_available_trigger_sources()]
            match = next((t for t in sources if t.lower() == s.trigger.lower()), None)
            if match is None:
                raise SourceError(f"{self.name}: trigger={s.trigger!r} is not offered by this camera: choose one of {', '.join(sources)}",
                                  permanent=True)
            cam.set_trigger(match)

    def _check(self, setting: str, value: float, bounds: Any, unit: str) -> None:
        low, high = bounds
        error = out_of_range(self.name, setting, value, float(low), float(high), unit)
        if error:
            raise error

    def _set_region(self, x: int, y: int, width: int, height: int) -> None:
        cam = self.camera
        for setting, value, (low, high) in (("Width", width, cam.get_width_bounds()), ("Height", height, cam.get_height_bounds()),
                                            ("OffsetX", x, cam.get_x_offset_bounds()), ("OffsetY", y, cam.get_y_offset_bounds())):
            if not low <= value <= high:
                sensor = cam.get_sensor_size()
                raise SourceError(f"{self.name}: roi {setting}={value} is out of range: this camera allows {low} to {high} "
                                  f"(sensor {sensor[0]}x{sensor[1]})", permanent=True)
        cam.set_region(x, y, width, height)

    def read(self) -> SourceImage:
        if self.camera is None or self._stream is None:
            raise SourceError(f"{self.name}: the camera is not open")
        try:
            return self._grab()
        except SourceError:
            self._lost = True
            raise
        except Exception as exc:  # GLib.Error: register reads time out once the camera is gone
            self._lost = True
            raise SourceError(f"{self.name}: camera lost ({_message(exc)})") from exc

    def _grab(self) -> SourceImage:
        aravis = load_aravis()
        hardware_trigger = self.settings.trigger not in (None, "software")
        deadline = time.monotonic() + self.settings.timeout_s
        status = "no buffer"
        while hardware_trigger or time.monotonic() < deadline:
            if self.settings.trigger == "software":
                self.camera.software_trigger()
            wait_us = int(min(1.0, self.settings.timeout_s) * 1e6)
            buffer = self._stream.timeout_pop_buffer(wait_us) if self._stream is not None else None
            if buffer is None:
                if self.camera is None:
                    break  # closed under the read
                continue  # waiting for a pulse on the line, or for a late frame
            try:
                if buffer.get_status() != aravis.BufferStatus.SUCCESS:
                    status = buffer.get_status().value_nick  # an incomplete frame (lost packets, timeout)
                    continue
                image = _pixels(buffer, aravis)
            finally:
                if self._stream is not None:
                    self._stream.push_buffer(buffer)
            fmt = str(self.camera.get_pixel_format_as_string())
            if fmt in RGB_FORMATS:
                image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            return SourceImage(image, ImageMeta(fields={"camera": self.device_id or str(self.camera.get_device_id()), "pixel_format": fmt}))
        raise SourceError(f"{self.name}: no frame for {self.settings.timeout_s:g} s (last: {status}; camera unplugged or powered off?)")

    def close(self) -> None:
        camera, stream, self.camera, self._stream = self.camera, self._stream, None, None
        lost, self._lost = self._lost, False
        if camera is None:
            return
        if not lost:
            with contextlib.suppress(Exception):  # gone after all: nothing left to stop
                camera.stop_acquisition()
            return
        # Releasing a lost GigE camera waits ~10 s for it to acknowledge: let a helper thread hold
        # the last references so the capture thread can go on reconnecting.
        parked = [camera, stream]
        del camera, stream
        threading.Thread(target=_release_later, args=(parked,), name="genicam-release", daemon=True).start()
        parked = []


def _release_later(parked: list[Any]) -> None:
    time.sleep(0.2)  # until close() has dropped its own references
    parked.clear()


def _pixels(buffer: Any, aravis: Any) -> np.ndarray:
    """The buffer's image at its depth: 8-bit formats as uint8, 10/12/16-bit ones as uint16."""
    width, height = buffer.get_image_width(), buffer.get_image_height()
    data = buffer.get_data()
    code = buffer.get_image_pixel_format()
    channels = 1 if code >> 24 == 0x01 else 3  # GenICam PFNC: 0x01 mono, 0x02 colour in the top byte
    bits = (code >> 16) & 0xFF  # bits per pixel
    dtype = np.uint16 if bits // channels > 8 else np.uint8
    image = np.frombuffer(data, dtype, count=width * height * channels).reshape(height, width, channels)
    return image[:, :, 0].copy() if channels == 1 else image.copy()


def _message(exc: BaseException) -> str:
    return str(getattr(exc, "message", "") or exc).strip() or type(exc).__name__
