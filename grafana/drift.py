"""Drift alarms in Grafana (docs/drift.md): the Microscope dashboard's "Model drift" panel and the
provisioned alert rule that fires while any device's heartbeat says `drift_alarm = 1`; and the
"Count QC" table of the model's agreement with reviewers on spot checks (docs/inbox.md).

The alert rule is provisioning data (grafana/provisioning/alerting/drift.yaml), written by
grafana/build.py beside the dashboards and checked against a fresh build like them.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import table, timeseries

from grafana.common import DATASOURCE_UID, device_filter, table_panel, timeseries_panel
from grafana.influxql import Select, Target, call

ALERT_FOR = "2m"  # the heartbeat's alarm must hold this long (a few heartbeats) before Grafana notifies
ALERT_QUERY = ('SELECT max("drift_alarm") FROM "device_status" WHERE $timeFilter '
               'GROUP BY time(1m), "device", "project" fill(none)')


def model_drift() -> timeseries.Panel:
    """The main model's drift statistics against its baseline, and the alarm (0/1)."""
    select = Select(
        (call("max", "drift_alarm", "alarm"), call("last", "drift_size_psi", "size PSI"),
         call("last", "drift_score_psi", "score PSI"), call("last", "drift_mix_psi", "class mix PSI"),
         call("last", "drift_count_change", "objects/frame change")),
        "device_status", device_filter(), interval="$__interval", fill="none",
    )
    return timeseries_panel("Model drift", "none", [Target("A", select).alias("$col")]).description(
        "The live stream against the model's baseline (docs/drift.md): PSI of sizes, scores and class mix (0.25 = a "
        "major shift), the relative change of objects per frame, and the alarm (1 while raised). What changed, in "
        "words, is in the device events below and on the device's Live page."
    )


QC_FIELDS = (("spot_checks", "spot checks"), ("mean_diff", "mean difference"), ("loa_low", "limit low"),
             ("loa_high", "limit high"), ("share_exact", "counted exactly"))


def count_qc() -> table.Panel:
    """The newest count QC of every model version and class: agreement with reviewed spot checks."""
    select = Select(tuple(call("last", name, alias) for name, alias in QC_FIELDS), "count_qc", device_filter(),
                    time_range="time > now() - 365d", tags=("model", "model_version", "class"))
    return table_panel("Count QC (spot checks)", [Target("A", select).table()]).description(
        "How the model's counts agree with a person's on reviewed spot checks (docs/inbox.md): mean difference "
        "model - person per frame, Bland-Altman 95 % limits, share counted exactly (0-1). A model version that is "
        "not listed has not been checked yet."
    )


def alert_rules() -> dict[str, Any]:
    """Grafana's alerting provisioning: one rule, one series per device."""
    return {
        "apiVersion": 1,
        "groups": [{
            "orgId": 1, "name": "scopehive-model", "folder": "ScopeHive", "interval": "1m",
            "rules": [{
                "uid": "scopehive-model-drift",
                "title": "Model drift",
                "condition": "C",
                "for": ALERT_FOR,
                "noDataState": "OK",
                "execErrState": "Error",
                "labels": {"severity": "warning", "area": "model"},
                "annotations": {
                    "summary": "{{ $labels.device }}: the model's live numbers have parted from its baseline",
                    "description": "The device raised a model_drift event saying what changed (sizes, scores, objects "
                                   "per frame or class mix); see its Live page or the Microscope dashboard. "
                                   "docs/drift.md explains the statistic.",
                },
                "data": [
                    {"refId": "A", "datasourceUid": DATASOURCE_UID, "relativeTimeRange": {"from": 600, "to": 0},
                     "model": {"refId": "A", "rawQuery": True, "query": ALERT_QUERY, "resultFormat": "time_series"}},
                    {"refId": "B", "datasourceUid": "__expr__",
                     "model": {"refId": "B", "type": "reduce", "expression": "A", "reducer": "last",
                               "settings": {"mode": "dropNN"}}},
                    {"refId": "C", "datasourceUid": "__expr__",
                     "model": {"refId": "C", "type": "threshold", "expression": "B",
                               "conditions": [{"evaluator": {"type": "gt", "params": [0.5]}}]}},
                ],
            }],
        }],
    }
