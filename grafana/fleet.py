"""The Fleet dashboard: every microscope at a glance — who is online, what it runs, how it does.

The devices table joins four small queries by the `device` column; each device name links to
its Microscope dashboard. "Online" means at least one heartbeat in the last 60 seconds
(heartbeats come every `status_interval_s`, 10 s by default).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.models import dashboard as dm

from grafana import common, hive
from grafana.common import timeseries_panel
from grafana.influxql import Select, Target, call, matches
from grafana.panels import device_links_override, version_timeline

RECENT = "time > now() - 7d"  # devices that reported in the last week stay listed
ONLINE_WINDOW = "time > now() - 60s"


def project_filter() -> tuple[str, ...]:
    return (matches("project", "project"),)


def status_select() -> Select:
    """Newest heartbeat values per device."""
    fields = (
        call("last", "model", "model"),
        call("last", "model_version", "version"),
        call("last", "backend", "backend"),
        call("last", "source_state", "camera"),
        call("last", "fps", "FPS"),
        call("last", "outbox_depth", "outbox"),
        call("last", "cpu_temp_c", "CPU °C"),
        call("last", "gpu_temp_c", "GPU °C"),
    )
    return Select(fields, "device_status", project_filter(), time_range=RECENT, tags=("device", "project"))


def device_targets() -> list[Target]:
    """Status, last heartbeat, online check and objects per frame: one row per device once joined."""
    heartbeat = Select((call("last", "uptime_s", "uptime"),), "device_status", project_filter(), time_range=RECENT, tags=("device",))
    online = Select((call("count", "uptime_s", "online"),), "device_status", project_filter(), time_range=ONLINE_WINDOW, tags=("device",))
    objects = Select((call("mean", "count", "objects/frame"),), "frame", project_filter(), tags=("device",))
    return [
        Target("A", status_select()).table(),
        Target("B", heartbeat).table(),
        Target("C", online).table(),
        Target("D", objects).table(),
    ]


def device_transformations() -> list[dm.DataTransformerConfig]:
    """Name B's time "last heartbeat", drop the other time columns, join everything by device."""
    return [
        dm.DataTransformerConfig(
            id_val="organize",
            filter_val=dm.MatcherConfig(id_val="byRefId", options="B"),
            options={"renameByName": {"Time": "last heartbeat"}},
        ),
        dm.DataTransformerConfig(id_val="filterFieldsByName", options={"exclude": {"names": ["Time"]}}),
        dm.DataTransformerConfig(id_val="joinByField", options={"byField": "device", "mode": "outer"}),
    ]


def devices_table() -> table.Panel:
    """Every device: online, model and version, FPS, objects per frame, outbox, temperatures."""
    online_mappings = [
        {"type": "special", "options": {"match": "null", "result": {"text": "offline", "color": "red", "index": 0}}},
        {"type": "range", "options": {"from": 1, "to": 1e12, "result": {"text": "online", "color": "green", "index": 1}}},
    ]
    panel = common.table_panel("Devices", device_targets())
    for transformation in device_transformations():
        panel = panel.with_transformation(transformation)
    return (
        panel.description("One row per device that reported in the last 7 days; click a device to open its Microscope dashboard.")
        .override_by_name("device", device_links_override())
        .override_by_name("online", [
            dm.DynamicConfigValue(id_val="mappings", value=online_mappings),
            dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
        ])
        .override_by_name("last heartbeat", [dm.DynamicConfigValue(id_val="unit", value="dateTimeFromNow")])
        .override_by_name("uptime", [dm.DynamicConfigValue(id_val="unit", value="s")])
        .override_by_name("objects/frame", [dm.DynamicConfigValue(id_val="decimals", value=1)])
    )


def per_device(title: str, unit: str, field_name: str, measurement: str, function: str = "mean") -> timeseries.Panel:
    """One line per device of `function(field_name)`."""
    select = Select((call(function, field_name),), measurement, project_filter(), interval="$__interval", tags=("device",), fill="none")
    return timeseries_panel(title, unit, [Target("A", select).alias("$tag_device")])


def temperatures() -> timeseries.Panel:
    """CPU and GPU temperature per device (where readable)."""
    cpu = Select((call("mean", "cpu_temp_c"),), "device_status", project_filter(), interval="$__interval", tags=("device",), fill="none")
    gpu = Select((call("mean", "gpu_temp_c"),), "device_status", project_filter(), interval="$__interval", tags=("device",), fill="none")
    return timeseries_panel("Temperature", "celsius", [Target("A", cpu).alias("$tag_device CPU"), Target("B", gpu).alias("$tag_device GPU")])


def dashboard() -> common.dash.Dashboard:
    """Assemble the Fleet dashboard."""
    board = common.base_dashboard(common.FLEET_UID, "ScopeHive / Fleet", "Every microscope of the hive: online, model, speed, counts, health.")
    board = board.with_variable(common.project_variable(multi=True))
    board = board.annotation(common.device_events_annotation(project_filter()))
    for annotation in common.rollout_and_training_annotations():
        board = board.annotation(annotation)
    return common.add_panels(board, [
        (devices_table(), 0, 0, 24, 10),
        (version_timeline("Model version per device", project_filter(), per_device=True), 0, 10, 24, 7),
        (per_device("Frames per second", "fps", "fps", "frame"), 0, 17, 12, 8),
        (per_device("Objects per frame", "none", "count", "frame"), 12, 17, 12, 8),
        (per_device("Outbox depth", "none", "outbox_depth", "device_status", "last"), 0, 25, 12, 8),
        (temperatures(), 12, 25, 12, 8),
        *hive.layout(33),
    ])
