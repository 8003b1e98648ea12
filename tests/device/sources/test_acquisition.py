"""Acquisition folders: every new file once, in order of arrival, only when complete, across restarts."""

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from device.sources.acquisition import JOURNAL_NAME, AcquisitionFolderSource
from device.sources.base import SourceError, SourceImage
from device.sources.capture import Capture
from device.sources.registry import open_source

SETTLE = 0.3


def _png(value: int, size: int = 16) -> bytes:
    ok, data = cv2.imencode(".png", np.full((size, size), value, np.uint16))
    assert ok
    return data.tobytes()


def _tiff_stack(planes: int, size: int = 64) -> bytes:
    out = io.BytesIO()
    stack = np.stack([np.full((size, size), 1000 + i, np.uint16) for i in range(planes)])
    tifffile.imwrite(out, stack, ome=True, metadata={"axes": "TYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
    return out.getvalue()


def _write(path: Path, data: bytes, mtime_ns: int | None = None) -> None:
    tmp = path.with_name(path.name + ".part")  # not an image suffix: ignored until renamed
    tmp.write_bytes(data)
    if mtime_ns is not None:
        os.utime(tmp, ns=(mtime_ns, mtime_ns))
    tmp.rename(path)


def _drain(source: AcquisitionFolderSource, count: int, timeout: float = 20.0) -> list[SourceImage]:
    """Read `count` frames through a real Capture (acknowledging each as the runtime does)."""
    capture = Capture(source).start()
    frames: list[SourceImage] = []
    deadline = time.monotonic() + timeout
    while len(frames) < count and time.monotonic() < deadline:
        frame = capture.get(timeout=0.5)
        if frame is not None:
            frames.append(SourceImage(frame.image, frame.meta))
    capture.stop()
    return frames


def test_files_written_slowly_are_read_once_complete(tmp_path: Path) -> None:
    source = AcquisitionFolderSource(str(tmp_path), settle_s=SETTLE)
    source.open()
    data = _tiff_stack(3)
    seen: list[SourceImage] = []
    reader = threading.Thread(target=lambda: seen.extend(_drain(source, 3, timeout=15)))
    reader.start()
    with (tmp_path / "slow.ome.tif").open("wb") as out:  # written in 8 pieces, 0.1 s apart (under settle_s)
        for start in range(0, len(data), len(data) // 8 + 1):
            out.write(data[start : start + len(data) // 8 + 1])
            out.flush()
            time.sleep(0.1)
    reader.join()
    assert [int(f.image[0, 0]) for f in seen] == [1000, 1001, 1002]
    assert [f.meta.fields["file_plane"] for f in seen] == [0, 1, 2]
    assert seen[0].meta.um_per_pixel == pytest.approx(0.5) and source.bad_files == 0


def test_200_files_in_bursts_each_once_in_order_of_arrival(tmp_path: Path) -> None:
    source = AcquisitionFolderSource(str(tmp_path), settle_s=SETTLE)
    source.open()
    rng = np.random.default_rng(3)
    names = [f"img_{int(v):06d}.png" for v in rng.permutation(200)]  # arrival order is not name order
    seen: list[SourceImage] = []
    reader = threading.Thread(target=lambda: seen.extend(_drain(source, 200, timeout=60)))
    reader.start()
    base = time.time_ns()
    for burst in range(10):
        for i in range(20):
            k = burst * 20 + i
            _write(tmp_path / names[k], _png(k), mtime_ns=base + k * 1000)  # distinct mtimes, in arrival order
        time.sleep(0.2)
    started = time.monotonic()
    reader.join()
    arrived = [str(f.meta.fields["file"]) for f in seen]
    assert arrived == names, f"got {len(arrived)} of 200 in {time.monotonic() - started:.1f} s after the last burst"
    assert [int(f.image[0, 0]) for f in seen] == list(range(200))


def test_damaged_file_is_skipped_and_counted_once_never_retried(tmp_path: Path) -> None:
    _write(tmp_path / "a.png", _png(1))
    _write(tmp_path / "broken.tif", b"II*\x00" + b"\x00" * 40)
    _write(tmp_path / "c.png", _png(3))
    source = AcquisitionFolderSource(str(tmp_path), settle_s=0.05, give_up_s=0.4)
    source.open()
    frames = _drain(source, 2)
    assert sorted(str(f.meta.fields["file"]) for f in frames) == ["a.png", "c.png"]
    assert source.bad_files == 1
    entries = [json.loads(line) for line in (tmp_path / JOURNAL_NAME).read_text().splitlines()]
    assert [e["file"] for e in entries if "bad" in e] == ["broken.tif"]
    again = AcquisitionFolderSource(str(tmp_path), settle_s=0.05, give_up_s=0.4)
    again.open()
    _write(tmp_path / "d.png", _png(4))
    assert [f.meta.fields["file"] for f in _drain(again, 1)] == ["d.png"]
    assert again.bad_files == 0  # the broken file was not tried again


def test_restart_resumes_a_half_read_stack_at_its_next_plane(tmp_path: Path) -> None:
    _write(tmp_path / "stack.ome.tif", _tiff_stack(4))
    first = AcquisitionFolderSource(str(tmp_path), settle_s=0.05)
    first.open()
    a, b = first.read(), first.read()
    assert a is not None and b is not None
    first.acknowledge(a.meta)
    first.acknowledge(b.meta)
    first.close()  # stopped after two planes were done
    second = AcquisitionFolderSource(str(tmp_path), settle_s=0.05)
    second.open()
    rest = [second.read(), second.read()]
    assert [int(p.image[0, 0]) for p in rest if p is not None] == [1002, 1003]
    assert [p.meta.fields["file_plane"] for p in rest if p is not None] == [2, 3]
    for plane in rest:
        assert plane is not None
        second.acknowledge(plane.meta)
    assert second.journal is not None and second.journal.planes["stack.ome.tif"] == 4


def test_a_frame_taken_but_not_done_is_read_again_after_a_restart(tmp_path: Path) -> None:
    _write(tmp_path / "a.png", _png(1))
    first = AcquisitionFolderSource(str(tmp_path), settle_s=0.05)
    first.open()
    assert first.read() is not None  # handed out, never acknowledged (the device died analysing it)
    first.close()
    second = AcquisitionFolderSource(str(tmp_path), settle_s=0.05)
    second.open()
    again = second.read()
    assert again is not None and again.meta.fields["file"] == "a.png"


def test_journal_that_cannot_be_written_is_a_clear_permanent_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    source = AcquisitionFolderSource(str(tmp_path), journal=str(tmp_path / "file" / "journal.jsonl"))
    with pytest.raises(SourceError, match=r"\?journal=") as info:
        source.open()
    assert info.value.permanent


def test_missing_folder_is_retried_until_it_appears(tmp_path: Path) -> None:
    folder = tmp_path / "run1"
    source = AcquisitionFolderSource(str(folder), settle_s=0.05)
    with pytest.raises(SourceError, match="not there") as info:
        source.open()
    assert not info.value.permanent
    folder.mkdir()
    _write(folder / "a.png", _png(9))
    frames = _drain(source, 1)
    assert [int(f.image[0, 0]) for f in frames] == [9]


@pytest.mark.parametrize(
    "query, message",
    [("mode=acquisition&settle=1", "unknown folder option settle"), ("mode=live", "unknown folder mode"),
     ("mode=acquisition&settle_s=soon", "settle_s")],
)
def test_bad_folder_options_fail_loudly(tmp_path: Path, query: str, message: str) -> None:
    with pytest.raises(SourceError, match=message) as info:
        open_source(f"{tmp_path}?{query}")
    assert info.value.permanent


def test_acquisition_uri(tmp_path: Path) -> None:
    source = open_source(f"{tmp_path}?mode=acquisition&settle_s=2.5&journal={tmp_path}/j.jsonl&channel=GFP")
    assert isinstance(source, AcquisitionFolderSource) and source.settle_s == 2.5 and not source.live


_DEVICE = """
import os, sys, time
from device.sources.acquisition import AcquisitionFolderSource
from device.sources.capture import Capture
folder, out = sys.argv[1], sys.argv[2]
capture = Capture(AcquisitionFolderSource(folder, settle_s=0.1), auto_done=False).start()
with open(out, "a") as log:
    while True:
        frame = capture.get(timeout=1.0)
        if frame is None:
            continue
        time.sleep(0.02)  # the analysis
        log.write(f"{frame.meta.fields['file']}\\n")
        log.flush()
        os.fsync(log.fileno())
        capture.done(frame)  # after the result is stored, as the runtime does with auto_done=False
"""


def test_sigkill_mid_run_and_restart_neither_skips_nor_repeats_more_than_the_frame_in_flight(tmp_path: Path) -> None:
    folder, out = tmp_path / "acq", tmp_path / "analysed.txt"
    folder.mkdir()
    script = tmp_path / "device_stub.py"
    script.write_text(_DEVICE)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    names = [f"f{i:03d}.png" for i in range(150)]
    base = time.time_ns()
    for i, name in enumerate(names):
        _write(folder / name, _png(i), mtime_ns=base + i * 1000)
    def lines() -> int:
        return len(out.read_text().split()) if out.exists() else 0

    kills, progress = 0, []
    for delay in (0.0, 0.013, 0.027):  # kill at different points of a frame's analysis
        before = lines()
        proc = subprocess.Popen([sys.executable, str(script), str(folder), str(out)], env=env)
        deadline = time.monotonic() + 30
        while lines() < before + 20 and time.monotonic() < deadline:  # started, well into the folder
            time.sleep(0.01)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        progress.append(len(set(out.read_text().split())) if out.exists() else 0)
    assert 0 < progress[0] < progress[-1] < len(names), f"the kills must land mid-run: {progress}"
    proc = subprocess.Popen([sys.executable, str(script), str(folder), str(out)], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(set(out.read_text().split()) if out.exists() else ()) < len(names):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    analysed = out.read_text().split()
    assert set(analysed) == set(names)  # nothing skipped
    first_seen = list(dict.fromkeys(analysed))
    assert first_seen == names  # in order of arrival, across restarts
    assert len(analysed) - len(names) <= kills, f"{len(analysed) - len(names)} repeats after {kills} kills"
