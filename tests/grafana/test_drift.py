"""The drift alarm in Grafana: the provisioned alert rule's query and the Microscope dashboard's
panel read the heartbeat fields the device writes (device/health.py drift_fields), on the real InfluxDB."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests
import yaml

from device.drift.monitor import DRIFT, OK, Change, DriftState
from device.drift.settings import DriftSettings
from device.drift.stage import DriftStage
from device.health import drift_fields
from device.metrics.points import Point
from grafana import build, drift
from grafana.queries import interpolate
from tests.conftest import Influx, create_database, drop_database


@pytest.fixture()
def influx() -> Iterator[Influx]:
    db = create_database("drift")
    yield db
    drop_database(db)


class _Pipeline:
    def __init__(self, state: DriftState) -> None:
        stage = DriftStage(DriftSettings())
        stage.state = state
        self.stages = [stage]


def _heartbeat(influx: Influx, device: str, state: DriftState, ago_s: float) -> None:
    fields = drift_fields(_Pipeline(state))  # type: ignore[arg-type]
    point = Point("device_status", {"device": device, "project": "demo"}, fields, int((time.time() - ago_s) * 1e6))
    requests.post(f"{influx.v1_url}/write", params={"db": influx.database, "precision": "u"}, data=point.to_line(),
                  timeout=10).raise_for_status()


def test_the_alert_query_finds_the_drifting_device_only(influx: Influx) -> None:
    drifting = DriftState(DRIFT, "validation", 900, (Change("size", 1.8, "objects are 52 % larger than in training"),),
                          {"size_psi": 0.9, "size_change": 0.52, "count_change": 0.01}, time.time())
    _heartbeat(influx, "scope-a", drifting, 30)
    _heartbeat(influx, "scope-b", DriftState(OK, "validation", 900, (), {"size_psi": 0.02}), 30)
    query = interpolate(drift.ALERT_QUERY, {}, "time > now() - 10m", "1m")
    latest = {row["device"]: row["max"] for row in influx.rows(query)}
    assert latest == {"scope-a": 1, "scope-b": 0}  # the threshold (> 0.5) fires for scope-a alone
    message = influx.rows('SELECT last("drift_message") FROM "device_status" WHERE "device" = \'scope-a\'')
    assert message[0]["last"] == "objects are 52 % larger than in training"


def test_the_panel_reads_the_fields_the_device_writes(influx: Influx) -> None:
    board = json.loads((build.OUTPUT_DIR / "microscope.json").read_text(encoding="utf-8"))
    panel = next(p for p in board["panels"] if p["title"] == "Model drift")
    query = panel["targets"][0]["query"]
    _heartbeat(influx, "scope-a", DriftState(DRIFT, "v", 1, (), {"size_psi": 0.9, "score_psi": 0.1, "mix_psi": 0.0,
                                                                   "count_change": 0.4}), 20)
    rows = influx.rows(interpolate(query, {"device": "scope-a", "project": "demo"}, "time > now() - 10m", "1m"))
    assert rows and {"alarm", "size PSI", "score PSI", "class mix PSI", "objects/frame change"} <= set(rows[-1])
    assert any(r["alarm"] == 1 and r["size PSI"] == pytest.approx(0.9) for r in rows)


def test_the_alerting_file_is_provisioned_and_current() -> None:
    rules = yaml.safe_load(build.ALERTING_FILE.read_text(encoding="utf-8"))
    rule = rules["groups"][0]["rules"][0]
    assert rule["uid"] == "scopehive-model-drift" and rule["condition"] == "C"
    assert rule["data"][0]["datasourceUid"] == "scopehive-influxdb"
    assert "COPY provisioning/alerting/" in (build.ALERTING_FILE.parents[2] / "Dockerfile").read_text()
    assert build.stale_files() == []


def test_the_count_qc_table_reads_the_points_the_panel_writes(influx: Influx) -> None:
    """count_qc points as a reviewed spot check writes them; the table shows the newest per model version and class."""
    from device.inbox.qc import SpotPair, agreements, qc_points

    pairs = [SpotPair("cells:3", "cell", m, h, f"f{i}") for i, (m, h) in enumerate([(10, 9), (12, 12), (8, 10)])]
    lines = []
    for n in (2, 3):  # the running figure after the second and the third spot check
        rows = agreements(pairs[:n])["cells:3"]
        lines += [p.to_line() for p in qc_points("cells", "3", rows, {"device": "scope-a", "project": "demo"},
                                                 int((time.time() - 60 + n) * 1e6))]
    requests.post(f"{influx.v1_url}/write", params={"db": influx.database, "precision": "u"}, data="\n".join(lines),
                  timeout=10).raise_for_status()
    board = json.loads((build.OUTPUT_DIR / "microscope.json").read_text(encoding="utf-8"))
    panel = next(p for p in board["panels"] if p["title"] == "Count QC (spot checks)")
    query = interpolate(panel["targets"][0]["query"], {"device": "scope-a", "project": "demo"}, "time > now() - 1h", "1m")
    (row,) = influx.rows(query)
    assert (row["model"], row["model_version"], row["class"], row["spot checks"]) == ("cells", "3", "cell", 3)
    assert row["mean difference"] == pytest.approx(-1 / 3) and row["counted exactly"] == pytest.approx(1 / 3)
    assert row["limit low"] < row["mean difference"] < row["limit high"]
