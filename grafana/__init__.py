"""Grafana for ScopeHive: provisioned InfluxDB datasource, dashboards generated from Python, annotations.

`python -m grafana.build` writes the dashboards into `grafana/provisioning/dashboards/json/`;
`grafana.annotations` marks model rollouts and training runs on them. See docs/dashboards.md.
"""
