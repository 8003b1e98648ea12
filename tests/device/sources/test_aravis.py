"""Generic GenICam cameras through Aravis, against Aravis' fake GigE Vision camera on loopback
(a real GVCP/GVSP network camera protocol, a separate process that can be killed and restarted)."""

import shutil
import subprocess
import time
from collections.abc import Iterator

import numpy as np
import pytest

from device.sources.aravis import AravisSource, load_aravis
from device.sources.base import SourceError, SourceImage
from device.sources.capture import Capture
from device.sources.registry import open_source

FAKE = "arv-fake-gv-camera-0.8"
SERIAL = "SH0001"


def _aravis_missing() -> str:
    if shutil.which(FAKE) is None:
        return f"{FAKE} is not installed (apt-get install aravis-tools)"
    try:
        load_aravis()
    except SourceError as exc:
        return str(exc)
    return ""


pytestmark = pytest.mark.skipif(bool(_aravis_missing()), reason=_aravis_missing() or "Aravis is there")


def _start_fake() -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([FAKE, "-i", "127.0.0.1", "-s", SERIAL], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # it binds its GVCP port
    return proc


@pytest.fixture
def fake_camera() -> Iterator[subprocess.Popen[bytes]]:
    proc = _start_fake()
    yield proc
    proc.kill()
    proc.wait()


def test_frames_at_the_set_format_exposure_and_region(fake_camera: subprocess.Popen[bytes]) -> None:
    source = open_source("genicam://127.0.0.1?pixel_format=Mono16&exposure_us=2000&gain=2&roi=0,0,320,240&fps=30")
    assert isinstance(source, AravisSource)
    source.open()
    try:
        item = source.read()
        assert isinstance(item, SourceImage)
        assert item.image.shape == (240, 320) and item.image.dtype == np.uint16
        assert int(item.image.max()) > 255  # 16-bit values, not squeezed into 8
        assert item.meta.fields["pixel_format"] == "Mono16"
        assert source.camera.get_exposure_time() == pytest.approx(2000)
        assert source.camera.get_gain() == pytest.approx(2)
    finally:
        source.close()


def test_mono8_and_the_first_camera_without_an_id(fake_camera: subprocess.Popen[bytes]) -> None:
    source = open_source("genicam://?pixel_format=Mono8")
    source.open()
    try:
        item = source.read()
        assert isinstance(item, SourceImage) and item.image.dtype == np.uint8 and item.image.ndim == 2
    finally:
        source.close()


@pytest.mark.parametrize(
    "query, message",
    [
        ("exposure_us=1", r"exposure_us=1 is out of range: this camera allows 10 to 1e\+07 µs"),
        ("gain=50", r"gain=50 is out of range: this camera allows 0 to 10 dB"),
        ("pixel_format=Mono12", r"pixel_format='Mono12' is not offered by this camera: choose one of Mono8, RGB8, Mono16"),
        ("roi=0,0,4000,10", r"roi Width=4000 is out of range: this camera allows 1 to 2048"),
        ("trigger=line7", r"trigger='line7' is not offered by this camera: choose one of Line0, Software"),
    ],
)
def test_a_refused_setting_names_itself_and_the_allowed_range(fake_camera: subprocess.Popen[bytes], query: str, message: str) -> None:
    source = open_source(f"genicam://127.0.0.1?{query}")
    with pytest.raises(SourceError, match=message) as info:
        source.open()
    assert info.value.permanent
    source.close()


def test_camera_killed_mid_run_is_reported_and_reconnected_when_it_is_back() -> None:
    proc = _start_fake()
    source = open_source("genicam://127.0.0.1?pixel_format=Mono8&fps=20&timeout_s=1")
    events: list[tuple[str, str]] = []
    capture = Capture(source, backoff=(0.2, 0.5), events=lambda kind, message: events.append((kind, message))).start()
    try:
        assert capture.get(timeout=10) is not None
        proc.kill()  # the camera loses power
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and capture.state != "reconnecting":
            time.sleep(0.05)
        # what /healthz shows: the grab timeout, or (on a loaded machine, first) the SDK's lost register read
        assert capture.state == "reconnecting" and ("no frame for 1 s" in capture.error or "camera lost" in capture.error), capture.error
        proc = _start_fake()  # power is back
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and capture.state != "ok":
            time.sleep(0.1)
        assert [k for k, _ in events][:2] == ["source_lost", "source_restored"], events
        assert capture.get(timeout=5) is not None
    finally:
        capture.stop()
        proc.kill()
        proc.wait()
