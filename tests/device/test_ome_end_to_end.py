"""An OME-TIFF stack through the whole device, against the real InfluxDB: every plane's points
carry its file, T/C indices, stage position and acquisition time (and sit at that time), sizes are
in µm from the file's PhysicalSizeX (not the config's), and the experiment's exports say so."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from device.config import DeviceConfig
from device.experiments.report import html_report, objects_csv, objects_geojson
from device.experiments.store import ExperimentRequest
from device.experiments.summary import summarise
from tests.conftest import Influx
from tests.device.bundles import malformed_peaks_bundle
from tests.device.runtime_helpers import ready_runtime

T, C = 5, 3
WIDTH, HEIGHT = 320, 240
PHYSICAL_SIZE_NM = 325.0  # written in nm: the device must convert to 0.325 µm
UM = PHYSICAL_SIZE_NM / 1000
START = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc).timestamp()
# (x, y, side) of the square objects, frame pixels: sizes 24 and 40 px = 7.8 and 13 µm
OBJECTS = [(40, 40, 24), (150, 60, 40), (250, 150, 24), (80, 170, 40)]


def _stack() -> np.ndarray:
    """T x C planes of 16-bit squares on a mid-grey background (12-bit data, as a camera gives)."""
    plane = np.full((HEIGHT, WIDTH), 1500, np.uint16)
    for x, y, side in OBJECTS:
        plane[y : y + side, x : x + side] = 3500
    return np.broadcast_to(plane, (T, C, HEIGHT, WIDTH)).copy()


def _write_ome(path: Path) -> None:
    planes = {"DeltaT": [60.0 * t for t in range(T) for _ in range(C)], "DeltaTUnit": ["s"] * (T * C),
              "PositionX": [100.0 + t for t in range(T) for _ in range(C)], "PositionXUnit": ["µm"] * (T * C)}
    tifffile.imwrite(path, _stack(), ome=True, metadata={
        "axes": "TCYX", "PhysicalSizeX": PHYSICAL_SIZE_NM, "PhysicalSizeY": PHYSICAL_SIZE_NM,
        "PhysicalSizeXUnit": "nm", "PhysicalSizeYUnit": "nm", "Channel": {"Name": ["DAPI", "GFP", "RFP"]}, "Plane": planes})
    xml = tifffile.TiffFile(path).ome_metadata
    assert xml is not None
    dated = xml.replace("<Pixels ", "<AcquisitionDate>2026-11-30T09:00:00Z</AcquisitionDate><Pixels ", 1)
    tifffile.tiffcomment(path, dated.encode())  # what Micro-Manager writes: the acquisition's start


def _answering_bundle(folder: Path) -> Path:
    """A model that answers the true boxes (at a model input of half the frame's size, so the
    device's own rescaling is on the path): the sizes then test the calibration, not a model."""
    boxes = np.array([[[x / 2, y / 2, (x + side) / 2, (y + side) / 2] for x, y, side in OBJECTS]], np.float32)
    return malformed_peaks_bundle(folder, boxes, WIDTH // 2, HEIGHT // 2)


@pytest.mark.slow
def test_ome_stack_points_carry_plane_file_time_and_um_from_the_file(influx: Influx, tmp_path: Path) -> None:
    folder = tmp_path / "acq"
    folder.mkdir()
    _write_ome(folder / "run.ome.tif")
    config = DeviceConfig.model_validate({
        "device_name": "scope-ome", "project": "lab", "source": f"{folder}?loop=0", "model": str(_answering_bundle(tmp_path / "m")),
        "um_per_pixel": 1.0, "data_dir": str(tmp_path / "data"), "port": 0,
        "influx": {"url": influx.url, "bucket": influx.database}})
    runtime = ready_runtime(config)
    recorder = runtime.parts.experiments
    assert recorder is not None
    experiment = recorder.start(ExperimentRequest(name="ome stack"), {})
    try:
        assert runtime.run() == T * C
        recorder.stop()
    finally:
        runtime.shutdown()

    rows: list[dict[str, Any]] = influx.rows('SELECT * FROM "frame"')
    assert len(rows) == T * C
    seen = {(r["plane_t"], r["plane_c"]) for r in rows}
    assert seen == {(t, c) for t in range(T) for c in range(C)}
    for r in rows:
        t = int(r["plane_t"])
        taken = START + 60.0 * t
        assert r["file"] == "run.ome.tif" and r["channel"] == ["DAPI", "GFP", "RFP"][int(r["plane_c"])]
        assert r["stage_x_um"] == pytest.approx(100.0 + t)
        assert r["acquired_at"] == datetime.fromtimestamp(taken, timezone.utc).isoformat(timespec="microseconds")
        # the point's time is the acquisition's (channels of one time point a few µs apart, never on one another)
        assert abs(int(r["time"]) / 1e9 - taken) < 1e-3, (r["time"], taken)
        assert r["count"] == len(OBJECTS)
    assert len({r["time"] for r in rows}) == T * C
    tag_keys: Any = influx.query('SHOW TAG KEYS FROM "frame"')[0]["values"]
    assert ["file"] not in tag_keys and ["plane_t"] not in tag_keys and ["device"] in tag_keys  # fields, not tags

    sizes: list[dict[str, Any]] = influx.rows('SELECT "size_um", "width_um" FROM "object"')
    assert len(sizes) == T * C * len(OBJECTS)
    truth = sorted(side * UM for _, _, side in OBJECTS)
    per_frame = sorted(float(s["size_um"]) for s in sizes[: len(OBJECTS)])
    for measured, true in zip(per_frame, truth, strict=True):
        assert abs(measured / true - 1) < 0.02, (measured, true)
    assert all(min(abs(float(s["size_um"]) / (side * UM) - 1) for side in (24, 40)) < 0.02 for s in sizes)

    store = recorder.store
    done = store.get(experiment.id)
    summary = summarise(done, store.frames(experiment.id), store.objects(experiment.id))
    assert summary["size_unit"] == "µm"
    median = summary["classes"]["cell"]["size"]["median"]
    assert abs(median / (32 * UM) - 1) < 0.02  # two sizes, equally many: the median is their mean
    report = html_report(done, summary)
    assert "file metadata (OME PhysicalSizeX/Y of run.ome.tif): 0.325 µm/px" in report

    table = list(csv.DictReader(io.StringIO("".join(objects_csv(store.objects(experiment.id))))))
    assert len(table) == T * C * len(OBJECTS)
    assert {(o["file"], o["plane_t"], o["plane_c"]) for o in table} == {("run.ome.tif", str(t), str(c)) for t in range(T) for c in range(C)}
    collection = json.loads("".join(objects_geojson(store.objects(experiment.id), ["cell", "crystal", "debris"], "run.ome.tif")))
    assert len(collection["features"]) == T * C * len(OBJECTS)
    sizes_um = sorted({round(f["properties"]["measurements"]["size_um"], 3) for f in collection["features"]})
    assert sizes_um == pytest.approx([24 * UM, 40 * UM], rel=0.02)
