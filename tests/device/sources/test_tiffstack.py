"""TIFF stacks as acquisition software writes them (tifffile writes them here): every plane a frame,
its indices and the file's own calibration on it, never a 4-D array and never an OpenCV warning."""

import logging
import math
import tracemalloc
import warnings
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from device.sources.base import SourceImage
from device.sources.capture import Capture
from device.sources.images import ImageFolderSource, read_image
from device.sources.registry import open_source
from device.sources.tiffstack import tiff_planes

UM_PER_PIXEL = 0.325
DIAMETERS_UM = (8.0, 12.0, 20.0)  # one disc per channel: the synthetic truth


BACKGROUND, SIGNAL = 100, 3000


def _stack(t: int = 5, c: int = 3, size: int = 160) -> np.ndarray:
    """T x C x Y x X, 16-bit (12-bit data): channel c holds one disc of DIAMETERS_UM[c] that moves
    with t, drawn 8x finer and averaged down (edges partly covered, as a camera sees them)."""
    fine = 8
    data = np.full((t, c, size, size), BACKGROUND, np.uint16)
    for ti in range(t):
        for ci in range(c):
            canvas = np.zeros((size * fine, size * fine), np.float32)
            radius = DIAMETERS_UM[ci] / UM_PER_PIXEL / 2 * fine
            cv2.circle(canvas, ((60 + 4 * ti) * fine, 80 * fine), int(round(radius)), 1.0, -1, cv2.LINE_8)
            cover = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
            data[ti, ci] = np.round(BACKGROUND + (SIGNAL - BACKGROUND) * cover).astype(np.uint16)
    return data


def _write_ome(path: Path, data: np.ndarray, **metadata: object) -> None:
    meta = {"axes": "TCYX", "PhysicalSizeX": UM_PER_PIXEL, "PhysicalSizeY": UM_PER_PIXEL, "PhysicalSizeXUnit": "µm",
            "PhysicalSizeYUnit": "µm", "Channel": {"Name": ["DAPI", "GFP", "RFP"]}}
    meta.update(metadata)
    tifffile.imwrite(path, data, ome=True, metadata=meta)


def _measured_diameter_um(plane: SourceImage) -> float:
    area_px = float((plane.image.astype(np.float64) - BACKGROUND).sum()) / (SIGNAL - BACKGROUND)
    assert plane.meta.um_per_pixel is not None
    return 2 * math.sqrt(area_px / math.pi) * plane.meta.um_per_pixel


def test_ome_stack_of_5_timepoints_x_3_channels_gives_15_frames_with_indices_and_calibration(tmp_path: Path) -> None:
    _write_ome(tmp_path / "run.ome.tif", _stack())
    source = open_source(str(tmp_path) + "?loop=0")
    source.open()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frames = []
        while (item := source.read()) is not None:
            assert isinstance(item, SourceImage)
            frames.append(item)
    assert len(frames) == 15
    assert [(f.meta.fields["plane_t"], f.meta.fields["plane_c"]) for f in frames] == [(t, c) for t in range(5) for c in range(3)]
    assert {f.meta.fields["channel"] for f in frames} == {"DAPI", "GFP", "RFP"}
    for frame in frames:
        assert frame.image.shape == (160, 160) and frame.image.dtype == np.uint16 and int(frame.image.max()) == SIGNAL  # 16-bit kept
        assert frame.meta.um_per_pixel == pytest.approx(UM_PER_PIXEL)
        assert frame.meta.calibration == "OME PhysicalSizeX/Y of run.ome.tif"
        assert frame.meta.fields["file"] == "run.ome.tif"
        truth = DIAMETERS_UM[int(frame.meta.fields["plane_c"])]
        assert _measured_diameter_um(frame) == pytest.approx(truth, rel=0.02)


def test_the_capture_hands_the_calibration_on_with_the_frame(tmp_path: Path) -> None:
    _write_ome(tmp_path / "run.ome.tif", _stack(t=2, c=1), Channel={"Name": ["BF"]})
    capture = Capture(open_source(str(tmp_path) + "?loop=0")).start()
    frame = capture.get(timeout=5)
    capture.stop()
    assert frame is not None and frame.um_per_pixel == pytest.approx(UM_PER_PIXEL)
    assert frame.meta.fields["plane_t"] == 0 and frame.image.dtype == np.uint16


@pytest.mark.parametrize("channel, expected", [("1", 1), ("GFP", 1), ("2", 2)])
def test_channel_option_keeps_one_channel(tmp_path: Path, channel: str, expected: int) -> None:
    _write_ome(tmp_path / "run.ome.tif", _stack())
    source = open_source(f"{tmp_path}?loop=0&channel={channel}")
    source.open()
    frames = []
    while (item := source.read()) is not None:
        assert isinstance(item, SourceImage)
        frames.append(item)
    assert [f.meta.fields["plane_t"] for f in frames] == [0, 1, 2, 3, 4]
    assert {f.meta.fields["plane_c"] for f in frames} == {expected}


@pytest.mark.parametrize("value, unit, um", [(325.0, "nm", 0.325), (0.000325, "mm", 0.325), (0.5, "µm", 0.5)])
def test_physical_size_units_become_micrometres(tmp_path: Path, value: float, unit: str, um: float) -> None:
    _write_ome(tmp_path / "u.ome.tif", _stack(t=1, c=3, size=64), PhysicalSizeX=value, PhysicalSizeY=value,
               PhysicalSizeXUnit=unit, PhysicalSizeYUnit=unit)
    first = next(tiff_planes(tmp_path / "u.ome.tif"))
    assert first.meta.um_per_pixel == pytest.approx(um)


def test_acquisition_time_and_stage_position_come_from_ome_planes(tmp_path: Path) -> None:
    data = _stack(t=2, c=1, size=64)
    planes = {"DeltaT": [0.0, 30.0], "DeltaTUnit": ["s", "s"], "PositionX": [100.0, 100.0], "PositionXUnit": ["µm", "µm"],
              "PositionY": [2.0, 2.0], "PositionYUnit": ["mm", "mm"]}
    _write_ome(tmp_path / "p.ome.tif", data, Channel={"Name": ["BF"]}, Plane=planes)
    xml = tifffile.TiffFile(tmp_path / "p.ome.tif").ome_metadata
    assert xml is not None
    dated = xml.replace('<Pixels ', '<AcquisitionDate>2026-11-30T09:00:00Z</AcquisitionDate><Pixels ', 1)
    tifffile.tiffcomment(tmp_path / "p.ome.tif", dated.encode())  # what Micro-Manager writes: a start date
    frames = list(tiff_planes(tmp_path / "p.ome.tif"))
    start = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc).timestamp()
    assert [f.meta.acquired_at for f in frames] == [start, start + 30.0]
    assert frames[1].meta.fields["stage_x_um"] == pytest.approx(100.0) and frames[1].meta.fields["stage_y_um"] == pytest.approx(2000.0)


def test_ome_xml_that_contradicts_the_pixels_is_reported_and_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write_ome(tmp_path / "bad.ome.tif", _stack(t=1, c=1, size=64))
    xml = tifffile.TiffFile(tmp_path / "bad.ome.tif").ome_metadata
    assert xml is not None and 'SizeX="64"' in xml
    tifffile.tiffcomment(tmp_path / "bad.ome.tif", xml.replace('SizeX="64"', 'SizeX="640"').encode())
    with caplog.at_level(logging.WARNING):
        frames = list(tiff_planes(tmp_path / "bad.ome.tif"))
    assert len(frames) == 1 and frames[0].image.shape == (64, 64)
    assert frames[0].meta.um_per_pixel is None and frames[0].meta.calibration == ""
    assert "SizeX=640" in caplog.text


def test_imagej_hyperstack_planes_and_calibration(tmp_path: Path) -> None:
    data = _stack(t=2, c=3, size=64)
    tifffile.imwrite(tmp_path / "ij.tif", data, imagej=True, resolution=(1 / 0.5, 1 / 0.5), metadata={"axes": "TCYX", "unit": "um"})
    frames = list(tiff_planes(tmp_path / "ij.tif"))
    assert len(frames) == 6 and frames[5].meta.fields["plane_t"] == 1 and frames[5].meta.fields["plane_c"] == 2
    assert frames[0].meta.um_per_pixel == pytest.approx(0.5) and frames[0].meta.calibration == "ImageJ calibration of ij.tif"


def test_plain_multipage_tiff_and_a_single_page_without_calibration(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "pages.tif", np.arange(3 * 8 * 8, dtype=np.uint16).reshape(3, 8, 8), photometric="minisblack")
    frames = list(tiff_planes(tmp_path / "pages.tif"))
    assert [f.meta.fields.get("plane_index") for f in frames] == [0, 1, 2]
    assert all(f.meta.um_per_pixel is None for f in frames)
    tifffile.imwrite(tmp_path / "one.tif", np.zeros((8, 8), np.uint16))
    (single,) = tiff_planes(tmp_path / "one.tif")
    assert single.meta.fields == {"file": "one.tif"} and single.meta.receipt == "one.tif"


def test_a_stack_of_thousands_of_planes_is_streamed_not_loaded_whole(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "long.ome.tif", np.zeros((2000, 128, 128), np.uint16), ome=True, metadata={"axes": "TYX"})
    whole = 2000 * 128 * 128 * 2  # 65 MB
    tracemalloc.start()
    planes = tiff_planes(tmp_path / "long.ome.tif")
    first = [next(planes) for _ in range(10)]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    planes.close()
    assert first[9].meta.fields["plane_t"] == 9
    assert peak < whole / 10, f"reading 10 planes took {peak / 1e6:.1f} MB of a {whole / 1e6:.0f} MB stack"


def test_tiff_with_private_vendor_tags_reads_without_warnings(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    image = np.random.default_rng(0).integers(0, 4096, (32, 40), dtype=np.uint16)
    tags = [(65325 + i, "s", 0, f"vendor{i}", True) for i in range(9)]  # 65325-65333, as a phase-contrast camera writes
    tifffile.imwrite(tmp_path / "phase.tif", image, extratags=tags)
    capfd.readouterr()
    loaded = read_image(tmp_path / "phase.tif")
    source = ImageFolderSource(str(tmp_path), loop=False)
    source.open()
    item = source.read()
    assert np.array_equal(loaded, image) and item is not None and np.array_equal(item.image, image)
    captured = capfd.readouterr()
    assert "Unknown field" not in captured.err and "WARN" not in captured.err


def test_truncated_stack_is_skipped_and_counted(tmp_path: Path) -> None:
    _write_ome(tmp_path / "a.ome.tif", _stack(t=1, c=3, size=64))
    data = (tmp_path / "a.ome.tif").read_bytes()
    (tmp_path / "b.ome.tif").write_bytes(data[: len(data) // 3])
    source = ImageFolderSource(str(tmp_path), loop=False)
    source.open()
    names = []
    while (item := source.read()) is not None:
        names.append(item.meta.fields["file"])
    assert names.count("a.ome.tif") == 3 and source.bad_files == 1
