"""Basler cameras on the real pypylon SDK, with its emulated cameras playing synthetic microscope frames."""

import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

os.environ.setdefault("PYLON_CAMEMU", "2")  # before pylon loads: two emulated cameras, 0815-0000 and 0815-0001
pytest.importorskip("pypylon", reason="pypylon has no wheel for this platform (pip install pypylon)")

from device.sources.base import SourceError, SourceImage  # noqa: E402
from device.sources.capture import Capture  # noqa: E402
from device.sources.pylon import PylonSource  # noqa: E402
from device.sources.registry import open_source  # noqa: E402
from device.sources.synthetic import SyntheticConfig, SyntheticMicroscope  # noqa: E402

SERIAL = "0815-0000"


def _microscope_frame(bits: int, width: int = 320, height: int = 240) -> np.ndarray:
    """A synthetic microscope frame as a camera of `bits` bits would deliver it (grey, uint16 above 8)."""
    frame = SyntheticMicroscope(SyntheticConfig(width=width, height=height, seed=4)).read().image
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.uint32)
    return ((grey << (bits - 8)) | (grey >> (16 - bits))).astype(np.uint16) if bits > 8 else grey.astype(np.uint8)


def _open(uri: str) -> PylonSource:
    source = open_source(uri)
    assert isinstance(source, PylonSource)
    source.open()
    return source


def _grab(source: PylonSource) -> SourceImage:
    item = source.read()
    assert isinstance(item, SourceImage)
    return item


@pytest.mark.parametrize("fmt, bits", [("Mono12", 12), ("Mono16", 16), ("Mono8", 8)])
def test_frames_keep_the_cameras_bit_depth(tmp_path: Path, fmt: str, bits: int) -> None:
    truth = _microscope_frame(bits)
    # the emulator reads files as 16-bit and shifts them to the format's depth (Mono12: >> 4)
    played = truth.astype(np.uint16) << (16 - bits) if bits < 16 else truth
    tifffile.imwrite(tmp_path / "frame.tif", played.astype(np.uint16) if bits > 8 else truth)
    source = _open(f"pylon://{SERIAL}?pixel_format={fmt}&exposure_us=2500&gain=6&roi=0,0,320,240&emulator_images={tmp_path}/frame.tif")
    try:
        frame = _grab(source)
        assert frame.image.dtype == (np.uint8 if bits == 8 else np.uint16)
        assert np.array_equal(frame.image, truth), f"{fmt}: max {frame.image.max()} vs truth {truth.max()}"
        assert frame.meta.fields == {"camera": SERIAL, "pixel_format": fmt}
        assert source.camera.ExposureTime.GetValue() == pytest.approx(2500)
        assert source.camera.Gain.GetValue() == pytest.approx(6, abs=0.1)
        if bits == 12:
            assert int(frame.image.max()) > 255 and int(frame.image.max()) <= 4095  # 12-bit values, not scaled to 8
    finally:
        source.close()


def test_region_of_interest_and_frame_rate(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "f.png"), _microscope_frame(8, 640, 480))
    source = _open(f"pylon://{SERIAL}?roi=16,8,256,128&fps=40&emulator_images={tmp_path}/f.png")
    capture = Capture(source).start()
    try:
        first = capture.get(timeout=5)
        assert first is not None and first.image.shape == (128, 256)
        start, frames = time.monotonic(), 0
        while time.monotonic() - start < 1.5:
            frames += capture.get(timeout=1) is not None
        rate = frames / (time.monotonic() - start)
        assert 25 <= rate <= 45, f"{rate:.1f} frames/s at fps=40"
    finally:
        capture.stop()


def test_software_trigger_gives_a_frame_per_read_and_none_unasked(tmp_path: Path) -> None:
    from pypylon import pylon

    source = _open(f"pylon://{SERIAL}?trigger=software&pixel_format=Mono8")
    try:
        assert not source.live  # the device asks: nothing to drop
        frames = [_grab(source) for _ in range(3)]
        assert all(f.image.dtype == np.uint8 for f in frames)
        unasked = source.camera.RetrieveResult(300, pylon.TimeoutHandling_Return)
        assert not unasked.IsValid()  # no trigger, no frame: the camera is not free-running
    finally:
        source.close()


@pytest.mark.parametrize(
    "query, message",
    [
        ("exposure_us=0.5", r"exposure_us=0.5 is out of range: this camera allows 1 to 1e\+07 µs"),
        ("gain=99", r"gain=99 is out of range: this camera allows 0 to 48 dB"),
        ("pixel_format=Mono14", r"pixel_format='Mono14' is not offered by this camera: choose one of Mono8, Mono10, Mono12, Mono16"),
        ("pixel_format=BayerRG8", r"'BayerRG8' is not one ScopeHive reads"),
        ("roi=0,0,5000,100", r"roi Width=5000 is out of range: this camera allows 1 to 4096"),
        ("roi=0,0,big", r"roi='0,0,big': give x,y,width,height"),
        ("trigger=line9", r"trigger='line9' is not offered by this camera: choose one of Software, Line1"),
        ("fps=10&trigger=software", r"either fps .* or trigger"),
    ],
)
def test_a_refused_setting_names_itself_and_the_allowed_range(query: str, message: str) -> None:
    source = open_source(f"pylon://{SERIAL}?{query}")
    with pytest.raises(SourceError, match=message) as info:
        source.open()
    assert info.value.permanent
    source.close()


def test_unknown_options_fail_at_once() -> None:
    with pytest.raises(SourceError, match="bad camera option exposure") as info:
        open_source(f"pylon://{SERIAL}?exposure=100")
    assert info.value.permanent


def test_a_camera_that_is_not_there_is_retried_and_says_what_is() -> None:
    source = open_source("pylon://4711?pixel_format=Mono8")
    with pytest.raises(SourceError, match=r"camera not found \(cameras seen: Emulation 0815-0000, Emulation 0815-0001\)") as info:
        source.open()
    assert not info.value.permanent


def test_a_camera_lost_mid_run_reconnects_with_the_reason(tmp_path: Path) -> None:
    source = open_source(f"pylon://{SERIAL}?pixel_format=Mono12&fps=50&timeout_s=1")
    assert isinstance(source, PylonSource)
    events: list[tuple[str, str]] = []
    capture = Capture(source, backoff=(0.1, 0.2), events=lambda kind, message: events.append((kind, message))).start()
    try:
        assert capture.get(timeout=5) is not None
        source.camera.Close()  # what the SDK sees when the emulated camera goes away under the grab
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(k == "source_restored" for k, _ in events):
            time.sleep(0.05)
        kinds = [k for k, _ in events]
        assert kinds[:2] == ["source_lost", "source_restored"], events
        assert ("camera lost" in events[0][1] or "no frame for" in events[0][1]) and SERIAL in events[0][1]  # closed under the grab, or its timeout first
        frames_before = capture.frames
        for _ in range(3):
            assert capture.get(timeout=5) is not None
        assert capture.frames >= frames_before + 2  # frames flow again
        assert capture.state == "ok" and capture.reconnects >= 1
    finally:
        capture.stop()
