"""The experiment dashboard's figures, run on the real InfluxDB, equal the device's own summary
of the same experiment (computed from its local record, no InfluxDB involved)."""

from __future__ import annotations

import pytest

from device.experiments.store import ExperimentStore
from device.experiments.summary import summarise
from grafana.queries import interpolate
from tests.grafana.conftest import Fleet
from tests.grafana.test_queries import INTERVAL, QUERIES, TIME_FILTER, variables


def _rows(fleet: Fleet, owner: str) -> list[dict[str, object]]:
    query = next(q for d, q in QUERIES if d == "experiment" and q.owner == owner)
    return fleet.influx.rows(interpolate(query.query, variables("experiment", fleet, "width_um"), TIME_FILTER, INTERVAL))


def test_dashboard_figures_equal_the_device_summary(fleet_metrics: Fleet) -> None:
    assert fleet_metrics.experiment_store is not None
    store = ExperimentStore(fleet_metrics.experiment_store)
    experiment = store.get(fleet_metrics.experiment)
    summary = summarise(experiment, store.frames(experiment.id), store.objects(experiment.id))
    assert summary["frames"]["excluded"] > 0 and summary["frames"]["analysed"] > 0
    (analysed,) = _rows(fleet_metrics, "Frames analysed")
    (excluded,) = _rows(fleet_metrics, "Frames excluded")
    assert (analysed["analysed"], excluded["excluded"]) == (summary["frames"]["analysed"], summary["frames"]["excluded"])
    counts = {row["class"]: row for row in _rows(fleet_metrics, "Counts per class (analysed frames)")}
    sizes = {row["class"]: row for row in _rows(fleet_metrics, "Object size per class, sqrt(width x height)")}
    for name, figures in summary["classes"].items():
        count, size = figures["count"], figures["size"]
        row = counts[name]
        assert row["frames"] == count["frames"]
        assert row["objects/frame"] == pytest.approx(count["mean"]) and row["sd"] == pytest.approx(count["sd"])
        assert row["objects/mm²"] == pytest.approx(count["density_per_mm2"])
        if size["objects"]:
            got = sizes[name]
            assert got["objects"] == size["objects"]
            assert (got["median µm"], got["p25 µm"], got["p75 µm"]) == pytest.approx((size["median"], size["q25"], size["q75"]))
