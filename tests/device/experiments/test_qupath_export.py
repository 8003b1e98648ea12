"""Back to the lab's tools: an experiment's objects as GeoJSON that QuPath imports (validated against
RFC 7946's structure with a JSON Schema and read back by the `geojson` library), a per-object table
naming the file and plane of each box, and the calibration's source in the record and the report."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import geojson
import jsonschema
import numpy as np
import pytest

from device.experiments.calibration import CalibrationProfile
from device.experiments.quality import FrameQuality
from device.experiments.recorder import ExperimentRecorder, FrameContext
from device.experiments.report import html_report, objects_csv, objects_geojson
from device.experiments.store import ExperimentRequest, ExperimentStore
from device.experiments.summary import summarise
from device.publish import Calibration
from device.sources.base import ImageMeta
from device.sources.capture import Frame
from tests.conftest import dets

_POSITION = {"type": "array", "minItems": 2, "items": {"type": "number"}}
_RING = {"type": "array", "minItems": 4, "items": _POSITION}
# RFC 7946 sections 3.1.6, 3.2 and 3.3, as far as this export uses them (Polygons only).
GEOJSON_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {"type": "array", "items": {
            "type": "object", "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"const": "Feature"},
                "id": {"type": ["string", "number"]},
                "properties": {"type": ["object", "null"]},
                "geometry": {"type": "object", "required": ["type", "coordinates"], "properties": {
                    "type": {"const": "Polygon"}, "coordinates": {"type": "array", "items": _RING}}},
            }}},
    },
}
CLASSES = ("cell", "debris")
QUALITY = FrameQuality(40.0, 0.0, 0.0, "ok")


def _recorded(tmp_path: Path, um: float | None, calibration: str, profile: str = "") -> tuple[ExperimentStore, str]:
    """Two frames of two planes of one OME file, two objects each."""
    store = ExperimentStore(tmp_path / "experiments.sqlite")
    if profile:
        store.save_profile(CalibrationProfile(name=profile, um_per_pixel=0.5))
    recorder = ExperimentRecorder(store, "scope", "lab", lambda *args: None)
    experiment = recorder.start(ExperimentRequest(name="qupath", profile=profile), {})
    for t in range(2):
        image = {"file": "run.ome.tif", "plane_t": t, "plane_c": 1, "channel": "GFP", "stage_x_um": 100.0}
        context = FrameContext(CLASSES, "m", "1", um, (240, 320), image, calibration)
        boxes = dets([[10, 20, 30, 60], [100.5, 50, 140.5, 70]], [0.9, 0.75], [0, 1])
        recorder.record(1_000_000 * (t + 1), t, QUALITY, "ok", boxes, context)
    recorder.stop()
    return store, experiment.id


def test_geojson_is_valid_and_quppath_reads_classes_boxes_and_um_sizes(tmp_path: Path) -> None:
    store, experiment = _recorded(tmp_path, 0.325, "file metadata (OME PhysicalSizeX/Y of run.ome.tif)")
    text = "".join(objects_geojson(store.objects(experiment), CLASSES))
    document = json.loads(text)
    jsonschema.validate(document, GEOJSON_SCHEMA)
    collection = geojson.loads(text)
    assert collection.is_valid, collection.errors()  # closed rings, numeric positions
    assert len(collection["features"]) == 4
    first, second = collection["features"][:2]
    assert first["geometry"]["coordinates"] == [[[10, 20], [30, 20], [30, 60], [10, 60], [10, 20]]]
    assert first["geometry"]["plane"] == {"c": -1, "z": 0, "t": 0}  # QuPath's ImagePlane of the box
    props = first["properties"]
    assert props["objectType"] == "detection" and props["classification"] == {"name": "cell", "color": [60, 200, 60]}
    assert second["properties"]["classification"]["name"] == "debris"
    m = props["measurements"]
    assert m["score"] == pytest.approx(0.9) and (m["width_px"], m["height_px"]) == (20, 40)
    assert m["width_um"] == pytest.approx(20 * 0.325) and m["height_um"] == pytest.approx(40 * 0.325)
    assert m["size_um"] == pytest.approx(np.sqrt(20 * 40) * 0.325) and m["area_um2"] == pytest.approx(800 * 0.325**2)
    assert (props["file"], props["plane_t"], props["plane_c"], props["channel"]) == ("run.ome.tif", 0, 1, "GFP")
    assert len({f["id"] for f in collection["features"]}) == 4
    assert json.loads("".join(objects_geojson(store.objects(experiment), CLASSES, "other.tif")))["features"] == []


def test_geojson_without_calibration_has_pixel_measurements_only(tmp_path: Path) -> None:
    store, experiment = _recorded(tmp_path, None, "")
    features = json.loads("".join(objects_geojson(store.objects(experiment), CLASSES)))["features"]
    assert set(features[0]["properties"]["measurements"]) == {"score", "width_px", "height_px"}


def test_object_table_names_file_and_plane_of_every_box(tmp_path: Path) -> None:
    store, experiment = _recorded(tmp_path, 0.325, "file metadata (OME PhysicalSizeX/Y of run.ome.tif)")
    rows = list(csv.DictReader(io.StringIO("".join(objects_csv(store.objects(experiment))))))
    assert [(r["file"], r["plane_t"], r["plane_c"], r["channel"], r["frame_index"]) for r in rows] == [
        ("run.ome.tif", "0", "1", "GFP", "0"), ("run.ome.tif", "0", "1", "GFP", "0"),
        ("run.ome.tif", "1", "1", "GFP", "1"), ("run.ome.tif", "1", "1", "GFP", "1")]
    assert float(rows[0]["x1"]) == 10 and float(rows[0]["size_um"]) == pytest.approx(np.sqrt(800) * 0.325)


@pytest.mark.parametrize("um, calibration, profile, shown", [
    (0.325, "file metadata (OME PhysicalSizeX/Y of run.ome.tif)", "", "file metadata (OME PhysicalSizeX/Y of run.ome.tif): 0.325 µm/px"),
    (0.65, "config (um_per_pixel)", "", "config (um_per_pixel): 0.65 µm/px"),
    (0.5, "experiment profile 40x", "40x", "experiment profile 40x: 0.5 µm/px"),
    (None, "", "", "none (sizes in px)"),
])
def test_report_names_the_calibration_source_beside_the_sizes(tmp_path: Path, um: float | None, calibration: str,
                                                              profile: str, shown: str) -> None:
    store, experiment = _recorded(tmp_path, um, calibration, profile)
    done = store.get(experiment)
    summary = summarise(done, store.frames(experiment), store.objects(experiment))
    html = html_report(done, summary)
    assert html.count(shown) == 2  # in the summary beside the µm figures, and in the provenance


def _frame(um: float | None, source: str = "") -> Frame:
    return Frame(np.zeros((8, 8, 3), np.uint8), 0, 0.0, 0.0, ImageMeta(um_per_pixel=um, calibration=source))


def test_calibration_says_where_its_figure_comes_from(tmp_path: Path) -> None:
    store = ExperimentStore(tmp_path / "experiments.sqlite")
    store.save_profile(CalibrationProfile(name="40x", um_per_pixel=0.5))
    recorder = ExperimentRecorder(store, "scope", "lab", lambda *args: None)
    calibration = Calibration(0.65, recorder)
    assert calibration.chosen() == (0.65, "config (um_per_pixel)")
    calibration.seen(_frame(0.325, "OME PhysicalSizeX/Y of run.ome.tif"))
    assert calibration.chosen() == (0.325, "file metadata (OME PhysicalSizeX/Y of run.ome.tif)")
    recorder.start(ExperimentRequest(name="chosen", profile="40x"), {})
    assert calibration.chosen() == (0.5, "experiment profile 40x")  # the user's choice wins
    recorder.stop()
    assert Calibration(None).chosen() == (None, "")


def test_a_store_from_before_gets_the_new_columns_and_keeps_its_experiments(tmp_path: Path) -> None:
    path = tmp_path / "experiments.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE frames (experiment TEXT NOT NULL, ts_us INTEGER NOT NULL, frame_index INTEGER,
        analysed TEXT NOT NULL, focus REAL, saturated REAL, dark REAL, count INTEGER, counts TEXT, model TEXT,
        model_version TEXT, um_per_pixel REAL, fov_mm2 REAL, PRIMARY KEY (experiment, ts_us));
        INSERT INTO frames VALUES ('old', 1, 0, 'ok', 1, 0, 0, 0, '{}', 'm', '1', NULL, NULL);""")
    db.commit()
    db.close()
    store = ExperimentStore(path)
    (old,) = store.frames("old")
    assert old["image"] == {} and old["calibration"] is None
    ExperimentStore(path)  # a second opening finds the columns there
