"""`python -m grafana.check` against the real InfluxDB the device loop filled."""

from __future__ import annotations

import json

import pytest

from grafana import build
from grafana.check import main
from grafana.queries import dashboard_queries
from tests.conftest import INFLUX_V1
from tests.grafana.conftest import Fleet, repeat_heartbeats


def run(fleet: Fleet, *extra: str) -> list[str]:
    return ["--influx-url", INFLUX_V1, "--database", fleet.influx.database, *extra]


def test_every_panel_has_data(fleet_metrics: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    if not fleet_metrics.hive:
        pytest.skip("no hive server environment here (`make hive-env`): the Fleet's hive panels would be empty")
    repeat_heartbeats(fleet_metrics.influx, fleet_metrics.devices, now=True)  # "online" means a heartbeat in the last minute
    assert main(run(fleet_metrics, "--project", fleet_metrics.project, "--device", "scope-b", "--size", "area_um2")) == 0
    out = capsys.readouterr().out
    assert "every panel has data" in out and "EMPTY" not in out and "ERROR" not in out
    assert "microscope / panel Live" not in out  # the stream panel has no query
    total = sum(1 for name in build.DASHBOARDS for _ in dashboard_queries(json.loads((build.OUTPUT_DIR / name).read_text())))
    assert sum(line.startswith("ok   ") for line in out.splitlines()) == total


def test_variables_resolve_like_grafana_when_not_given(fleet_metrics: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(run(fleet_metrics, "--dashboard", "microscope")) == 0
    assert "every panel has data" in capsys.readouterr().out


def test_a_quiet_range_reports_empty_panels(fleet_metrics: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(run(fleet_metrics, "--range", "1ms", "--dashboard", "experiment")) == 1
    out = capsys.readouterr().out
    assert "EMPTY experiment / panel Objects per frame by device [A]" in out


def test_wrong_database_says_so(fleet_metrics: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--influx-url", INFLUX_V1, "--database", "no_such_db", "--dashboard", "fleet"]) == 2
    assert "database not found" in capsys.readouterr().err
