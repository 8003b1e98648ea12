"""Every query of every panel, variable and annotation runs on the real InfluxDB and finds its data.

Grafana's macros and variables are replaced by concrete values the way Grafana would
(`$timeFilter` -> a time condition, `$__interval` -> 10s, `${device:regex}` -> an escaped name),
then the query goes to InfluxDB's InfluxQL endpoint. A panel whose query returns nothing would be
an empty panel in Grafana, so every query must return the series the panel expects.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from grafana import build
from grafana.common import SIZE_MEASURES
from grafana.queries import DashboardQuery, dashboard_queries, interpolate
from tests.grafana.conftest import Fleet

TIME_FILTER = "time > now() - 1h"
INTERVAL = "10s"
QUANTILE_COLUMNS = [f"p{q:02d}" for q in (5, 15, 25, 35, 45, 55, 65, 75, 85, 95)]


def all_queries() -> list[tuple[str, DashboardQuery]]:
    out = []
    for name in sorted(build.DASHBOARDS):
        dashboard = json.loads((build.OUTPUT_DIR / name).read_text(encoding="utf-8"))
        out.extend((name.removesuffix(".json"), query) for query in dashboard_queries(dashboard))
    return out


QUERIES = all_queries()


def variables(dashboard: str, fleet: Fleet, size: str) -> dict[str, str | list[str]]:
    """The values a user would pick: first device, the test project, all classes."""
    if dashboard == "fleet":
        return {"project": [fleet.project]}
    values: dict[str, str | list[str]] = {"project": fleet.project, "size": size}
    if dashboard == "microscope":
        values["device"] = fleet.devices[0]
    if dashboard == "experiment":
        values["class"] = list(fleet.classes)
        values["experiment"] = fleet.experiment
    return values


def tag_values(series: list[dict[str, Any]], tag: str) -> set[str]:
    """A tag's values across series (GROUP BY) or table columns."""
    found = {str((s.get("tags") or {}).get(tag)) for s in series if (s.get("tags") or {}).get(tag) is not None}
    for s in series:
        if tag in s["columns"]:
            index = s["columns"].index(tag)
            found |= {str(row[index]) for row in s["values"] if row[index] is not None}
    return found


def non_null_values(series: list[dict[str, Any]]) -> int:
    return sum(1 for s in series for row in s["values"] for column, v in zip(s["columns"], row, strict=True) if column != "time" and v is not None)


def expectations(dashboard: str, query: DashboardQuery, fleet: Fleet) -> dict[str, set[str]]:
    """Which tag values (devices, classes) a query must return; empty = just "has data"."""
    per_device = {"device": set(fleet.devices)}
    by_owner: dict[tuple[str, str], dict[str, set[str]]] = {
        ("microscope", "Objects per frame by class"): {"class": set(fleet.classes)} if query.ref_id == "A" else {},
        ("microscope", "device"): {"value": set(fleet.devices)},
        ("microscope", "project"): {"value": {fleet.project}},
        ("fleet", "Devices"): per_device,
        ("fleet", "Model version per device"): per_device,
        ("fleet", "Frames per second"): per_device,
        ("fleet", "Objects per frame"): per_device,
        ("fleet", "Outbox depth"): per_device,
        ("fleet", "Temperature"): per_device,
        ("fleet", "Hive: inference server per device"): {"device": {fleet.devices[1]}},
        ("fleet", "Hive: remote inference latency"): {"device": {fleet.devices[1]}},
        ("fleet", "project"): {"value": {fleet.project}},
        ("experiment", "Objects per frame by class (all devices)"): {"class": set(fleet.classes)},
        ("experiment", "Objects per frame by device"): per_device,
        ("experiment", "Classes over the range"): {"class": set(fleet.classes)},
        ("experiment", "Devices and models over the range"): per_device,
        ("experiment", "class"): {"value": set(fleet.classes)},
        ("experiment", "project"): {"value": {fleet.project}},
        ("experiment", "experiment"): {"value": {fleet.experiment}},
        ("experiment", "Counts per class (analysed frames)"): {"class": set(fleet.classes)},
        ("experiment", "Focus score and excluded frames"): {"analysed": {"out_of_focus"}} if query.ref_id == "B" else {},
    }
    owner = query.owner.split(":")[0]
    return by_owner.get((dashboard, owner), {})


@pytest.mark.parametrize(
    ("dashboard", "query"), QUERIES, ids=[f"{d}:{q.kind}:{q.owner}:{q.ref_id}" for d, q in QUERIES]
)
def test_query_returns_the_series_its_panel_expects(dashboard: str, query: DashboardQuery, fleet_metrics: Fleet) -> None:
    if query.owner.startswith("Hive:") and not fleet_metrics.hive:
        pytest.skip("no hive server environment here (`make hive-env`): the hive panels have no device to show")
    sizes = [value for value, _, _ in SIZE_MEASURES] if "${size}" in query.query else ["width_um"]
    for size in sizes:
        text = interpolate(query.query, variables(dashboard, fleet_metrics, size), TIME_FILTER, INTERVAL)
        series = fleet_metrics.influx.query(text)
        assert series and non_null_values(series) > 0, f"empty panel: {text}"
        for tag, expected in expectations(dashboard, query, fleet_metrics).items():
            assert expected <= tag_values(series, tag), f"{tag} {expected} missing from {text}"
        if query.query.count("percentile(") == len(QUANTILE_COLUMNS):
            assert series[0]["columns"][1:] == QUANTILE_COLUMNS


@pytest.mark.parametrize(("device", "model", "version"), [("scope-a", "peaks", "1.0.0"), ("scope-b", "peaks-b", "2.0.0")])
def test_model_panel_names_the_model_each_device_runs(device: str, model: str, version: str, fleet_metrics: Fleet) -> None:
    query = next(q for d, q in QUERIES if d == "microscope" and q.owner == "Model and camera")
    values = {**variables("microscope", fleet_metrics, "width_um"), "device": device}
    (row,) = fleet_metrics.influx.rows(interpolate(query.query, values, TIME_FILTER, INTERVAL))
    assert (row["model"], row["version"], row["camera"]) == (model, version, "ok")
    on_hive = device == "scope-b" and fleet_metrics.hive  # scope-b's model runs on the test hive server
    assert str(row["backend"]).startswith(("triton",) if on_hive else ("onnx", "opencv")), row["backend"]


def test_fleet_shows_who_runs_what(fleet_metrics: Fleet) -> None:
    status = next(q for d, q in QUERIES if d == "fleet" and q.owner == "Devices" and q.ref_id == "A")
    rows = fleet_metrics.influx.rows(interpolate(status.query, {"project": [fleet_metrics.project]}, TIME_FILTER, INTERVAL))
    assert {row["device"]: (row["model"], row["version"]) for row in rows} == {"scope-a": ("peaks", "1.0.0"), "scope-b": ("peaks-b", "2.0.0")}
    timeline = next(q for d, q in QUERIES if d == "fleet" and q.owner == "Model version per device")
    rows = fleet_metrics.influx.rows(interpolate(timeline.query, {"project": [fleet_metrics.project]}, TIME_FILTER, INTERVAL))
    assert {(row["device"], row["version"]) for row in rows} == {("scope-a", "1.0.0"), ("scope-b", "2.0.0")}


def test_fleet_table_marks_reporting_devices_online(fleet_metrics: Fleet) -> None:
    online = next(q for d, q in QUERIES if d == "fleet" and q.owner == "Devices" and q.ref_id == "C")
    rows = fleet_metrics.influx.rows(interpolate(online.query, {"project": [fleet_metrics.project]}, TIME_FILTER, INTERVAL))
    assert {row["device"]: row["online"] >= 1 for row in rows} == dict.fromkeys(fleet_metrics.devices, True)


def test_device_events_annotation_shows_the_start(fleet_metrics: Fleet) -> None:
    annotation = next(q for d, q in QUERIES if d == "microscope" and q.kind == "annotation")
    rows = fleet_metrics.influx.rows(interpolate(annotation.query, variables("microscope", fleet_metrics, "width_um"), TIME_FILTER, INTERVAL))
    assert any(row["kind"] == "started" and row["device"] == fleet_metrics.devices[0] for row in rows)


def test_fleet_shows_which_server_each_hive_device_uses(fleet_metrics: Fleet) -> None:
    if not fleet_metrics.hive:
        pytest.skip("no hive server environment here (`make hive-env`)")
    table = next(q for d, q in QUERIES if d == "fleet" and q.owner == "Hive: inference server per device")
    (row,) = fleet_metrics.influx.rows(interpolate(table.query, {"project": [fleet_metrics.project]}, TIME_FILTER, INTERVAL))
    assert row["device"] == "scope-b" and row["state"] in ("remote", "fallback")  # fallback: a frame past its deadline
    assert 0 < float(row["remote ms"]) < 5000 and 0 <= float(row["fallback rate"]) < 0.5  # type: ignore[arg-type]
    servers = fleet_metrics.influx.rows("SELECT DISTINCT(\"hive_endpoint\") AS s FROM \"device_status\" WHERE \"device\" = 'scope-b'")
    assert any(str(r["s"]).startswith("http://127.0.0.1:") for r in servers)


def test_every_dashboard_has_queries() -> None:
    kinds = {(d, q.kind) for d, q in QUERIES}
    assert {("microscope", "panel"), ("microscope", "variable"), ("microscope", "annotation"), ("fleet", "panel"), ("experiment", "panel")} <= kinds
