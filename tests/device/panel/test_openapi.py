"""The OpenAPI document (/openapi.json, device/openapi.py) lists every JSON route of the device web
app and its panel, and nothing that is gone: adding a JSON view without declaring it fails here."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from device import openapi

# Routes under an /api/ prefix that answer something else than JSON (files, images, a stream).
NOT_JSON_API = {
    "live.live": "server-sent events (text/event-stream)",
    "annotate.display": "JPEG", "annotate.thumb": "JPEG", "annotate.original": "the uploaded file",
    "experiments.frames": "CSV", "experiments.objects": "CSV", "experiments.report": "HTML",
    "experiments.calibration_frame": "JPEG",
}


def serves_json(app: Flask, rule: Rule) -> bool:
    """A view answers JSON when it returns a dict (Flask serialises it) or calls jsonify."""
    view = app.view_functions[rule.endpoint]
    returns = str(inspect.signature(view).return_annotation)
    try:
        source = inspect.getsource(view)
    except (OSError, TypeError):
        source = ""
    return "dict[" in returns or "jsonify(" in source


def json_rules(app: Flask) -> list[Rule]:
    static = [r for r in app.url_map.iter_rules() if r.endpoint == "static" or r.endpoint.endswith(".static")]
    return [r for r in app.url_map.iter_rules() if r not in static
            and (serves_json(app, r) or ("/api/" in r.rule and r.endpoint not in NOT_JSON_API))]


def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    parsed: dict[str, Any] = json.loads(response.get_data(as_text=True))
    return parsed


def test_every_json_route_is_documented(app: Flask, client: FlaskClient) -> None:
    paths = document(client)["paths"]
    rules = json_rules(app)
    assert len(rules) >= 20  # the detection still sees the panel's API
    missing = []
    for rule in rules:
        path, _ = openapi.openapi_path(rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            if method.lower() not in paths.get(path, {}):
                missing.append(f"{method} {rule.rule} ({rule.endpoint})")
    assert not missing, f"JSON routes without a declaration in device/openapi.py OPERATIONS: {missing}"


def test_no_declaration_outlives_its_route(app: Flask) -> None:
    assert openapi.stale_declarations(app) == []
    assert {r.endpoint for r in json_rules(app)} == set(openapi.OPERATIONS)


def test_the_document_is_openapi_that_schemathesis_reads(app: Flask, client: FlaskClient) -> None:
    import schemathesis

    doc = document(client)
    assert doc["openapi"].startswith("3.1") and doc["info"]["title"] == "ScopeHive device"
    schema = schemathesis.openapi.from_dict(doc)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]  # an Err fails here
    assert len(operations) == sum(len(set(item) - {"parameters"}) for item in doc["paths"].values())
    put = doc["paths"]["/panel/api/projects/{slug}/images/{image_id}/annotation"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/AnnotationBody"}
    assert {"200", "400", "401", "404", "409"} <= set(put["responses"])
    assert put["security"] == [{"session": [], "csrf": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    parameters = doc["paths"]["/panel/api/projects/{slug}/images/{image_id}/annotation"]["parameters"]
    assert [p["name"] for p in parameters] == ["slug", "image_id"]


def test_the_document_is_public_and_the_same_without_a_login(client: FlaskClient) -> None:
    """It names routes, never data: no login is needed, and the panel's data stays behind one."""
    assert document(client) == document(client)
    assert client.get("/panel/api/experiments").status_code == 401


@pytest.mark.parametrize(("rule", "path", "kinds"), [
    ("/healthz", "/healthz", []),
    ("/panel/api/projects/<slug>/images/<image_id>", "/panel/api/projects/{slug}/images/{image_id}", ["string", "string"]),
    ("/panel/projects/<slug>/classes/<int:class_id>/remove", "/panel/projects/{slug}/classes/{class_id}/remove",
     ["string", "integer"]),
    ("/files/<path:key>", "/files/{key}", ["string"]),
])
def test_flask_rules_become_openapi_paths(rule: str, path: str, kinds: list[str]) -> None:
    got, parameters = openapi.openapi_path(rule)
    assert got == path and [p["schema"]["type"] for p in parameters] == kinds
    assert all(p["in"] == "path" and p["required"] for p in parameters)


def test_a_device_without_the_panel_documents_its_own_routes(tmp_path: Any) -> None:
    from device.config import DeviceConfig
    from device.web import create_app
    from tests.device.panel.helpers import SyntheticRuntime

    app = create_app(DeviceConfig(data_dir=tmp_path), SyntheticRuntime(tmp_path / "c"), with_panel=False)  # type: ignore[arg-type]
    paths = document(app.test_client())["paths"]
    assert sorted(paths) == ["/healthz", "/openapi.json"]
