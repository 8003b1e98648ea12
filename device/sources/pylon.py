"""Basler cameras through pypylon, the vendor's own SDK: `pylon://<serial>?exposure_us=...`.

Scientific cameras deliver 10-, 12- or 16-bit data; it stays 16-bit here, as from a TIFF file
(to_bgr8 maps it for the models). Every setting is checked against what the camera allows, and a
refused one fails with the setting's name and the allowed range. A camera that goes away (cable,
power, another program taking it) raises a plain SourceError, so the capture thread reconnects
with the reason in /healthz. `PYLON_CAMEMU=N` makes pylon offer N emulated cameras, which can
play image files (`emulator_images=`): the tests run the real SDK path on synthetic frames.
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np
from pydantic import Field

from device.sources.base import ImageMeta, SourceError, SourceImage
from device.sources.camera_settings import (
    PIXEL_FORMATS,
    RGB_FORMATS,
    CameraSettings,
    out_of_range,
    parse_camera_uri,
)

_MAX_BAD_GRABS = 20  # incomplete frames in a row (a saturated GigE link) before the camera counts as lost


class PylonSettings(CameraSettings):
    """The URI options of a pylon:// source: those of every camera, and the emulator's images."""

    emulator_images: str | None = Field(None, description="Basler emulator only: play this image file or folder")


def parse_uri(uri: str) -> tuple[str, PylonSettings]:
    """`pylon://<serial>?exposure_us=2000&pixel_format=Mono12` -> (serial or "" for the first camera, settings)."""
    return parse_camera_uri(uri, PylonSettings)


class PylonSource:
    """One Basler camera. Free-running (optionally at `fps`) it is live: the newest frame wins.
    With `trigger=software` it takes a frame when the device asks for one (never drops)."""

    def __init__(self, serial: str, settings: PylonSettings) -> None:
        self.serial = serial
        self.settings = settings
        self.name = f"pylon://{serial}" if serial else "pylon:// (first camera)"
        self.live = settings.trigger != "software"
        self.camera: Any = None
        self._lock = threading.Lock()
        self._bad_grabs = 0

    # -- connecting -------------------------------------------------------------------------
    def open(self) -> None:
        self.close()
        pylon = _pylon()
        try:
            devices = list(pylon.TlFactory.GetInstance().EnumerateDevices())
        except Exception as exc:  # the transport layers themselves failed
            raise SourceError(f"{self.name}: pylon cannot list cameras ({exc})") from exc
        chosen = next((d for d in devices if not self.serial or d.GetSerialNumber() == self.serial), None)
        if chosen is None:
            seen = ", ".join(f"{d.GetModelName()} {d.GetSerialNumber()}" for d in devices) or "none"
            raise SourceError(f"{self.name}: camera not found (cameras seen: {seen}); is it plugged in and powered?")
        camera = pylon.InstantCamera(pylon.TlFactory.GetInstance().CreateDevice(chosen))
        try:
            camera.Open()
        except Exception as exc:  # taken by another program, or gone between listing and opening
            raise SourceError(f"{self.name}: cannot open the camera ({_message(exc)})") from exc
        self.serial = self.serial or str(chosen.GetSerialNumber())
        self.camera = camera
        try:
            self._configure()
            strategy = pylon.GrabStrategy_OneByOne if self.settings.trigger else pylon.GrabStrategy_LatestImageOnly
            camera.StartGrabbing(strategy)
        except SourceError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise SourceError(f"{self.name}: the camera refused to start ({_message(exc)})") from exc
        self._bad_grabs = 0

    def _configure(self) -> None:
        s = self.settings
        s.check(self.name)
        if s.emulator_images:
            self._enumeration("TestImageSelector", "Off", "emulator_images")
            self._node("ImageFilename", "emulator_images").SetValue(s.emulator_images)
            self._enumeration("ImageFileMode", "On", "emulator_images")
        if s.pixel_format:
            self._pixel_format(s.pixel_format)
        current = str(self._node("PixelFormat", "pixel_format").GetValue())
        if current not in PIXEL_FORMATS:
            raise SourceError(f"{self.name}: the camera is set to {current}, which ScopeHive does not read: "
                              f"give pixel_format= one of {', '.join(PIXEL_FORMATS)}", permanent=True)
        region = s.region()
        if region:
            self._set_roi(*region)
        if s.exposure_us is not None:
            self._switch_off("ExposureAuto")
            self._set_number(("ExposureTime", "ExposureTimeAbs"), s.exposure_us, "exposure_us", "µs")
        if s.gain is not None:
            self._switch_off("GainAuto")
            self._set_number(("Gain", "GainAbs"), s.gain, "gain", "dB")
        if s.fps is not None:
            self._set_bool("AcquisitionFrameRateEnable", True, "fps")
            self._set_number(("AcquisitionFrameRate", "AcquisitionFrameRateAbs"), s.fps, "fps", "frames/s")
        self._set_trigger(s.trigger)

    def _node(self, name: str, setting: str) -> Any:
        from pypylon import genicam

        node = self.camera.GetNodeMap().GetNode(name)
        if node is None or not genicam.IsAvailable(node):
            raise SourceError(f"{self.name}: {setting}: this camera has no {name} setting", permanent=True)
        return node

    def _has(self, name: str) -> bool:
        from pypylon import genicam

        node = self.camera.GetNodeMap().GetNode(name)
        return node is not None and genicam.IsWritable(node)

    def _switch_off(self, name: str) -> None:
        if self._has(name):
            self.camera.GetNodeMap().GetNode(name).SetValue("Off")

    def _set_bool(self, name: str, value: bool, setting: str) -> None:
        if self._has(name):
            self.camera.GetNodeMap().GetNode(name).SetValue(value)

    def _enumeration(self, name: str, value: str, setting: str) -> None:
        node = self._node(name, setting)
        allowed = [str(v) for v in node.Symbolics]
        match = next((v for v in allowed if v.lower() == value.lower()), None)
        if match is None:
            raise SourceError(f"{self.name}: {setting}={value!r} is not offered by this camera: choose one of {', '.join(allowed)}",
                              permanent=True)
        node.SetValue(match)

    def _set_number(self, names: tuple[str, ...], value: float, setting: str, unit: str) -> None:
        name = next((n for n in names if self._has(n)), names[0])
        node = self._node(name, setting)
        error = out_of_range(self.name, setting, value, float(node.GetMin()), float(node.GetMax()), unit)
        if error:
            raise error
        node.SetValue(type(node.GetValue())(value))

    def _pixel_format(self, wanted: str) -> None:
        node = self._node("PixelFormat", "pixel_format")
        offered = [str(v) for v in node.Symbolics]
        usable = [f for f in offered if f in PIXEL_FORMATS]
        if wanted not in offered or wanted not in PIXEL_FORMATS:
            reason = "is not offered by this camera" if wanted not in offered else "is not one ScopeHive reads"
            raise SourceError(f"{self.name}: pixel_format={wanted!r} {reason}: choose one of {', '.join(usable)}", permanent=True)
        node.SetValue(wanted)

    def _set_roi(self, x: int, y: int, width: int, height: int) -> None:
        for name in ("OffsetX", "OffsetY"):
            if self._has(name):
                self.camera.GetNodeMap().GetNode(name).SetValue(0)  # so the full width and height are allowed
        for name, value in (("Width", width), ("Height", height), ("OffsetX", x), ("OffsetY", y)):
            node = self._node(name, "roi")
            low, high, step = int(node.GetMin()), int(node.GetMax()), int(node.GetInc())
            if not low <= value <= high or (value - low) % step:
                raise SourceError(f"{self.name}: roi {name}={value} is out of range: this camera allows {low} to {high} "
                                  f"in steps of {step} (sensor {self._sensor()})", permanent=True)
            node.SetValue(value)

    def _sensor(self) -> str:
        nodes = self.camera.GetNodeMap()
        width, height = nodes.GetNode("WidthMax"), nodes.GetNode("HeightMax")
        return f"{width.GetValue()}x{height.GetValue()}" if width is not None and height is not None else "size unknown"

    def _set_trigger(self, trigger: str | None) -> None:
        if not self._has("TriggerMode"):
            if trigger:
                raise SourceError(f"{self.name}: trigger: this camera has no trigger", permanent=True)
            return
        if self._has("TriggerSelector"):
            self._enumeration("TriggerSelector", "FrameStart", "trigger")
        if not trigger:
            self.camera.GetNodeMap().GetNode("TriggerMode").SetValue("Off")
            return
        self._enumeration("TriggerSource", trigger, "trigger")
        self.camera.GetNodeMap().GetNode("TriggerMode").SetValue("On")

    # -- frames -----------------------------------------------------------------------------
    def read(self) -> SourceImage:
        if self.camera is None:
            raise SourceError(f"{self.name}: the camera is not open")
        try:
            return self._grab()
        except SourceError:
            raise
        except Exception as exc:  # pypylon raises genicam errors when the device goes away mid-grab
            raise SourceError(f"{self.name}: camera lost ({_message(exc)})") from exc

    def _grab(self) -> SourceImage:
        pylon = _pylon()
        camera = self.camera
        hardware_trigger = self.settings.trigger not in (None, "software")
        while True:
            if camera is not self.camera or not camera.IsGrabbing():
                raise SourceError(f"{self.name}: camera lost (closed or removed)")
            if self.settings.trigger == "software":
                camera.WaitForFrameTriggerReady(int(self.settings.timeout_s * 1000), pylon.TimeoutHandling_ThrowException)
                camera.ExecuteSoftwareTrigger()
            wait_ms = 1000 if hardware_trigger else int(self.settings.timeout_s * 1000)
            result = camera.RetrieveResult(wait_ms, pylon.TimeoutHandling_Return)
            if camera.IsCameraDeviceRemoved():
                raise SourceError(f"{self.name}: camera removed (unplugged or powered off)")
            if result is None or not result.IsValid():
                if hardware_trigger:
                    continue  # waiting for the next pulse on the line is not a fault
                raise SourceError(f"{self.name}: no frame for {self.settings.timeout_s:g} s")
            try:
                if not result.GrabSucceeded():
                    self._bad_grabs += 1
                    if self._bad_grabs >= _MAX_BAD_GRABS:
                        raise SourceError(f"{self.name}: {self._bad_grabs} incomplete frames in a row ({result.GetErrorDescription()})")
                    continue
                self._bad_grabs = 0
                image = np.array(result.GetArray(), copy=True)
                pixel_format = str(camera.PixelFormat.GetValue())
            finally:
                result.Release()
            if pixel_format in RGB_FORMATS:
                image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            return SourceImage(image, ImageMeta(fields={"camera": self.serial, "pixel_format": pixel_format}))

    def close(self) -> None:
        with self._lock:
            camera, self.camera = self.camera, None
        if camera is None:
            return
        try:
            if camera.IsGrabbing():
                camera.StopGrabbing()
            camera.Close()
            camera.DestroyDevice()
        except Exception:  # already gone: nothing left to release
            pass


def _pylon() -> Any:
    try:
        from pypylon import pylon
    except ImportError as exc:
        raise SourceError("pylon:// needs pypylon (pip install 'scopehive[device]' or pip install pypylon)", permanent=True) from exc
    return pylon


def _message(exc: BaseException) -> str:
    """pypylon's messages carry the C++ file and line: keep the first sentence a person reads."""
    text = str(exc).split(" : ", 1)[0].strip()
    return text or type(exc).__name__
