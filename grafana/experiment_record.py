"""Panels of one recorded experiment (the `experiment` tag the device writes while one runs).

Each figure is the InfluxQL form of what the device's own summary computes (device/experiments/
summary.py): analysed frames are those with a `count`, excluded ones carry `analysed` != ok and
no count, sizes are the per-object `size_um`, and median/percentile follow InfluxQL's rules,
which the device's summary uses too. So the panel and the downloaded report agree.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import histogram, stat, table, timeseries
from grafana_foundation_sdk.models import dashboard as dm

from grafana import common
from grafana.influxql import Select, Target, call, matches, show_tag_values
from grafana.tags import TAG_EXPERIMENT

EXCLUDED = "\"analysed\" != 'ok'"


def experiment_variable() -> dash.QueryVariable:
    """Experiments recorded in the chosen project (newest data decides nothing: pick by id)."""
    return (
        dash.QueryVariable("experiment")
        .label("Experiment")
        .description("Started on a device's Experiments page, its HTTP API or `python -m device experiment start`")
        .datasource(common.datasource())
        .query(show_tag_values("frame", "experiment", (matches("project", "project"),)))
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_DESC)
    )


def where() -> tuple[str, ...]:
    return (matches("project", "project"), matches("experiment", "experiment"))


def frames_analysed() -> stat.Panel:
    select = Select((call("count", "count", "analysed"),), "frame", where())
    return common.stat_panel("Frames analysed", "none", [Target("A", select)]).description(
        "Frames the model looked at (they have a count)")


def frames_excluded() -> stat.Panel:
    select = Select((call("count", "frame_index", "excluded"),), "frame", (*where(), EXCLUDED))
    return common.stat_panel("Frames excluded", "none", [Target("A", select)]).description(
        "Recorded but not analysed: out of focus, badly exposed, no model or unusable (no count, never a zero)")


def class_figures() -> table.Panel:
    fields = (call("mean", "count", "objects/frame"), call("stddev", "count", "sd"), call("count", "count", "frames"),
              call("mean", "density_per_mm2", "objects/mm²"))
    select = Select(fields, "class_stats", where(), tags=("class",))
    return common.table_panel("Counts per class (analysed frames)", [Target("A", select).table()])


def size_figures() -> table.Panel:
    fields = (call("median", "size_um", "median µm"), call("percentile", "size_um", "p25 µm", 25),
              call("percentile", "size_um", "p75 µm", 75), call("count", "size_um", "objects"))
    select = Select(fields, "object", where(), tags=("class",))
    return common.table_panel("Object size per class, sqrt(width x height)", [Target("A", select).table()])


def size_histogram() -> histogram.Panel:
    select = Select(("\"size_um\"",), "object", (*where(), matches("class", "class")), tags=("class",))
    return (
        histogram.Panel().title("Object size distribution").datasource(common.datasource()).unit("µm")
        .bucket_count(20).with_target(Target("A", select).alias("$tag_class"))
    )


def counts_over_time() -> timeseries.Panel:
    select = Select((call("mean", "count"),), "class_stats", (*where(), matches("class", "class")),
                    interval="$__interval", tags=("class",), fill="none")
    return common.timeseries_panel("Objects per analysed frame over time", "none", [Target("A", select).alias("$tag_class")])


def quality_over_time() -> timeseries.Panel:
    focus = Select((call("mean", "focus"),), "frame", where(), interval="$__interval", fill="none")
    excluded = Select((call("count", "frame_index"),), "frame", (*where(), EXCLUDED), interval="$__interval",
                      tags=("analysed",), fill="none")
    return common.timeseries_panel("Focus score and excluded frames", "none", [
        Target("A", focus).alias("focus score"), Target("B", excluded).alias("excluded: $tag_analysed")])


def experiment_annotation() -> dash.AnnotationQuery:
    return common.grafana_annotation("Experiments", TAG_EXPERIMENT, "green")
