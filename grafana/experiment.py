"""The Experiment dashboard: one project's counts and sizes, aggregated over all its microscopes.

Means are over frames from every device of the project, so a device running faster weighs more;
the per-device panel shows whether the devices agree.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import heatmap, table, timeseries

from grafana import common, experiment_record, tracking
from grafana.common import timeseries_panel
from grafana.influxql import Select, Target, call, matches
from grafana.panels import device_links_override, quantile_heatmap, quantile_select


def project_filter() -> tuple[str, ...]:
    return (matches("project", "project"),)


def class_filter() -> tuple[str, ...]:
    return (matches("project", "project"), matches("class", "class"))


def counts_by_class() -> timeseries.Panel:
    select = Select((call("mean", "count"),), "class_stats", class_filter(), interval="$__interval", tags=("class",), fill="none")
    return common.with_class_colours(timeseries_panel("Objects per frame by class (all devices)", "none", [Target("A", select).alias("$tag_class")]))


def counts_by_device() -> timeseries.Panel:
    select = Select((call("mean", "count"),), "frame", project_filter(), interval="$__interval", tags=("device",), fill="none")
    return timeseries_panel("Objects per frame by device", "none", [Target("A", select).alias("$tag_device")])


def size_heatmap() -> heatmap.Panel:
    where = (*class_filter(), '"count" > 0')
    return quantile_heatmap(
        "Box size distribution (all devices): ${size:text}",
        "Per time slice, ten quantiles of the per-frame, per-class median box size over every device of the project.",
        Target("A", quantile_select("${size}_median", "class_stats", where)),
        None,
    )


def size_by_class() -> timeseries.Panel:
    where = (*class_filter(), '"count" > 0')
    select = Select((call("median", "${size}_median"),), "class_stats", where, interval="$__interval", tags=("class",), fill="none")
    return common.with_class_colours(timeseries_panel("Median box size by class: ${size:text}", "none", [Target("A", select).alias("$tag_class")]))


def class_summary() -> table.Panel:
    """Per class over the whole range: objects per frame, median size, frames seen."""
    fields = (
        call("mean", "count", "objects/frame"),
        call("median", "${size}_median", "median size"),
        call("count", "count", "frames"),
    )
    select = Select(fields, "class_stats", class_filter(), tags=("class",))
    return common.table_panel("Classes over the range", [Target("A", select).table()]).span(12)


def devices() -> table.Panel:
    """The project's devices over the range, with the model versions they ran."""
    fields = (call("count", "count", "frames"), call("mean", "count", "objects/frame"), call("mean", "fps", "FPS"))
    select = Select(fields, "frame", project_filter(), tags=("device", "project", "model", "model_version"))
    return (
        common.table_panel("Devices and models over the range", [Target("A", select).table()])
        .span(12)
        .override_by_name("device", device_links_override())
    )


def dashboard() -> common.dash.Dashboard:
    """Assemble the Experiment dashboard."""
    board = common.base_dashboard(
        common.EXPERIMENT_UID, "ScopeHive / Experiment", "One project over all its microscopes: counts and sizes per class."
    ).time("now-6h", "now")
    variables = [common.project_variable(multi=False), common.class_variable(), common.size_variable(),
                 experiment_record.experiment_variable()]
    for variable in variables:
        board = board.with_variable(variable)
    for annotation in [*common.rollout_and_training_annotations(), experiment_record.experiment_annotation()]:
        board = board.annotation(annotation)
    return common.add_panels(board, [
        (counts_by_class(), 0, 0, 12, 9),
        (counts_by_device(), 12, 0, 12, 9),
        (size_heatmap(), 0, 9, 12, 9),
        (size_by_class(), 12, 9, 12, 9),
        (class_summary(), 0, 18, 12, 8),
        (devices(), 12, 18, 12, 8),
        (tracking.finished_tracks(class_filter()), 0, 26, 12, 9),
        (tracking.track_speed(class_filter()), 12, 26, 12, 9),
        (tracking.crossings(class_filter()), 0, 35, 12, 9),
        (tracking.motility_table(class_filter()), 12, 35, 12, 9),
        (experiment_record.frames_analysed(), 0, 44, 4, 4),
        (experiment_record.frames_excluded(), 0, 48, 4, 4),
        (experiment_record.class_figures(), 4, 44, 10, 8),
        (experiment_record.size_figures(), 14, 44, 10, 8),
        (experiment_record.counts_over_time(), 0, 52, 12, 9),
        (experiment_record.size_histogram(), 12, 52, 12, 9),
        (experiment_record.quality_over_time(), 0, 61, 24, 8),
    ])
