"""The Fleet dashboard's hive row: which inference server each device uses, how fast it answers,
how often frames fall back to the device's own model, and what a frame costs on the network.

Fed by device_status (hive_* fields, each heartbeat) and by the `frame` points of frames a hive
server analysed (remote_ms, bytes_sent); devices that run only locally have no rows here."""

from __future__ import annotations

from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.models import dashboard as dm

from grafana import common
from grafana.common import timeseries_panel
from grafana.influxql import Select, Target, call, matches

RECENT = "time > now() - 7d"


def _project() -> tuple[str, ...]:
    return (matches("project", "project"),)


def servers_table() -> table.Panel:
    """One row per device on the hive: remote or fallback now, server URL, latency, fallback rate."""
    fields = (
        call("last", "hive_state", "state"),
        call("last", "hive_endpoint", "server"),
        call("last", "hive_remote_ms", "remote ms"),
        call("last", "hive_fallback_rate", "fallback rate"),
    )
    select = Select(fields, "device_status", _project(), time_range=RECENT, tags=("device",))
    panel = common.table_panel("Hive: inference server per device", [Target("A", select).table()])
    return (
        panel.description("Devices with backend `triton`: where their frames run now (remote, or fallback = the local "
                          "model because the hive was slow or gone; /healthz on the device says why).")
        .override_by_name("fallback rate", [dm.DynamicConfigValue(id_val="unit", value="percentunit")])
        .override_by_name("remote ms", [dm.DynamicConfigValue(id_val="unit", value="ms")])
    )


def _per_device(title: str, unit: str, field_name: str, measurement: str) -> timeseries.Panel:
    select = Select((call("mean", field_name),), measurement, _project(), interval="$__interval", tags=("device",), fill="none")
    return timeseries_panel(title, unit, [Target("A", select).alias("$tag_device")])


def remote_latency() -> timeseries.Panel:
    return _per_device("Hive: remote inference latency", "ms", "remote_ms", "frame")


def fallback_rate() -> timeseries.Panel:
    return _per_device("Hive: fallback rate", "percentunit", "hive_fallback_rate", "device_status")


def bytes_per_frame() -> timeseries.Panel:
    return _per_device("Hive: bytes sent per frame", "bytes", "bytes_sent", "frame")


def layout(y: int) -> common.Layout:
    """The hive row, from grid row `y` down."""
    return [
        (servers_table(), 0, y, 24, 6),
        (remote_latency(), 0, y + 6, 8, 8),
        (fallback_rate(), 8, y + 6, 8, 8),
        (bytes_per_frame(), 16, y + 6, 8, 8),
    ]
