"""The dashboards as code: the committed JSON is exactly what the generator writes, and sound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grafana import build
from grafana.common import EXPERIMENT_UID, FLEET_UID, MICROSCOPE_UID
from grafana.influxql import DATASOURCE_UID

EXPECTED_UIDS = {"microscope.json": MICROSCOPE_UID, "fleet.json": FLEET_UID, "experiment.json": EXPERIMENT_UID}


def load(name: str) -> dict:
    return json.loads((build.OUTPUT_DIR / name).read_text(encoding="utf-8"))


def test_committed_json_equals_a_fresh_build() -> None:
    fresh = build.build_all()
    assert sorted(fresh) == sorted(EXPECTED_UIDS)
    for name, content in fresh.items():
        committed = (build.OUTPUT_DIR / name).read_text(encoding="utf-8")
        assert committed == content, f"{name} is stale: run `make dashboards` and commit it"
    assert build.stale_files() == []


def test_check_mode_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--out", str(tmp_path)]) == 0
    assert build.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "fleet.json").write_text("{}", encoding="utf-8")
    assert build.main(["--check", "--out", str(tmp_path)]) == 1
    assert "fleet.json is out of date" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "uid"), sorted(EXPECTED_UIDS.items()))
def test_uids_are_fixed(name: str, uid: str) -> None:
    assert load(name)["uid"] == uid


@pytest.mark.parametrize("name", sorted(EXPECTED_UIDS))
def test_every_data_panel_queries_the_provisioned_datasource(name: str) -> None:
    dashboard = load(name)
    for panel in dashboard["panels"]:
        if panel["type"] == "text":
            continue
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}
            assert target["rawQuery"] is True and target["query"].startswith(("SELECT", "SHOW"))


@pytest.mark.parametrize("name", sorted(EXPECTED_UIDS))
def test_panels_have_unique_ids_and_do_not_overlap(name: str) -> None:
    panels = load(name)["panels"]
    assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, f"{panel['title']} runs off the 24-column grid"
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize("name", sorted(EXPECTED_UIDS))
def test_rollouts_and_training_runs_are_annotations(name: str) -> None:
    tag_queries = [a["target"]["tags"] for a in load(name)["annotations"]["list"] if a["target"].get("type") == "tags"]
    assert ["scopehive", "rollout"] in tag_queries
    assert ["scopehive", "training"] in tag_queries


def test_microscope_shows_the_device_stream_as_html() -> None:
    stream = next(p for p in load("microscope.json")["panels"] if p["type"] == "text")
    assert stream["options"]["mode"] == "html"
    assert '<img src="${stream_scheme}://${device}${stream_domain}:${stream_port}/stream.mjpg?token=${stream_token}"' in stream["options"]["content"]
    variables = {v["name"] for v in load("microscope.json")["templating"]["list"]}
    assert {"device", "project", "stream_scheme", "stream_domain", "stream_port", "stream_token"} <= variables


@pytest.mark.parametrize("name", ["fleet.json", "experiment.json"])
def test_device_columns_link_to_the_microscope_dashboard(name: str) -> None:
    urls = [
        link["url"]
        for panel in load(name)["panels"]
        for override in panel.get("fieldConfig", {}).get("overrides", [])
        if override["matcher"] == {"id": "byName", "options": "device"}
        for prop in override["properties"]
        if prop["id"] == "links"
        for link in prop["value"]
    ]
    assert urls and all(url.startswith(f"/d/{MICROSCOPE_UID}/") and "var-device=${__value.raw}" in url for url in urls)
