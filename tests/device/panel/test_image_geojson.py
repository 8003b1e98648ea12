"""A captured image's boxes as a GeoJSON file that QuPath imports as objects (valid GeoJSON, read
back by the `geojson` library, class names and colours the project's, µm sizes from the capture's
calibration)."""

from __future__ import annotations

import json

import geojson
import jsonschema
import pytest
from flask.testing import FlaskClient

from tests.device.experiments.test_qupath_export import GEOJSON_SCHEMA
from tests.device.panel.conftest import Auth


def test_a_captured_frame_downloads_as_qupath_objects_with_the_projects_classes(client: FlaskClient) -> None:
    auth = Auth(client)
    auth.login()
    slug = auth.project()
    image = auth.json("POST", f"/panel/api/projects/{slug}/capture", None).get_json()["image"]  # type: ignore[attr-defined]
    boxes = [{"x1": 10, "y1": 20, "x2": 50, "y2": 60, "class_id": 0}, {"x1": 100, "y1": 40, "x2": 130, "y2": 80, "class_id": 2}]
    url = f"/panel/api/projects/{slug}/images/{image['id']}"
    assert auth.json("PUT", f"{url}/annotation", {"revision": 0, "boxes": boxes}).status_code == 200  # type: ignore[attr-defined]
    response = client.get(f"{url}/objects.geojson")
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    assert response.headers["Content-Disposition"].endswith('.geojson"')
    text = response.get_data(as_text=True)
    jsonschema.validate(json.loads(text), GEOJSON_SCHEMA)
    collection = geojson.loads(text)
    assert collection.is_valid, collection.errors()
    first, second = collection["features"]
    assert first["geometry"]["coordinates"] == [[[10, 20], [50, 20], [50, 60], [10, 60], [10, 20]]]
    assert (first["properties"]["classification"]["name"], second["properties"]["classification"]["name"]) == ("cell", "debris")
    assert first["properties"]["objectType"] == "detection" and first["properties"]["file"] == image["file_name"]
    colour = first["properties"]["classification"]["color"]
    assert len(colour) == 3 and all(0 <= c <= 255 for c in colour)
    um = (image.get("acquisition") or {}).get("um_per_pixel")
    if um:
        assert first["properties"]["measurements"]["width_um"] == pytest.approx(40 * um)
    else:
        assert "width_um" not in first["properties"]["measurements"]


def test_an_unknown_image_is_a_404_with_a_message(client: FlaskClient) -> None:
    auth = Auth(client)
    auth.login()
    slug = auth.project()
    response = client.get(f"/panel/api/projects/{slug}/images/nope/objects.geojson")
    assert response.status_code == 404 and response.get_json()["error"]
