"""Panel kinds more than one dashboard uses: quantile heatmaps, per-device links, state timelines.

A heatmap of sizes needs many values per time slice, but returning every raw point of an hour of
frames would be heavy. Instead each slice returns ten quantiles (5th, 15th, ..., 95th percentile):
equal-mass samples of that slice's distribution, so Grafana's bucketing of them draws its shape.
`percentile()` exists in InfluxQL on 1.x, 2.x and 3.x alike (unlike `sample()`).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import heatmap, statetimeline
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import heatmap as hm

from grafana.common import MICROSCOPE_UID, datasource
from grafana.influxql import Select, Target, call

QUANTILES = (5, 15, 25, 35, 45, 55, 65, 75, 85, 95)


def quantile_select(field_name: str, measurement: str, where: tuple[str, ...]) -> Select:
    """Ten quantiles of `field_name` per `$__interval`, for a heatmap."""
    return Select(
        fields=tuple(call("percentile", field_name, f"p{q:02d}", q) for q in QUANTILES),
        measurement=measurement,
        where=where,
        interval="$__interval",
        fill="none",
    )


def quantile_heatmap(title: str, description: str, target: Target, y_unit: str | None) -> heatmap.Panel:
    """A heatmap Grafana calculates from the quantile series (see module docstring)."""
    y_axis = heatmap.YAxisConfig().axis_placement(cm.AxisPlacement.LEFT)
    if y_unit:
        y_axis = y_axis.unit(y_unit)
    return (
        heatmap.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .with_target(target)
        .calculate(True)
        .calculation(
            cb.HeatmapCalculationOptions().y_buckets(
                cb.HeatmapCalculationBucketConfig().mode(cm.HeatmapCalculationMode.COUNT).value("20")
            )
        )
        .color(heatmap.HeatmapColorOptions().mode(hm.HeatmapColorMode.SCHEME).scheme("Viridis").scale(hm.HeatmapColorScale.EXPONENTIAL).exponent(0.5).steps(64))
        .y_axis(y_axis)
        .cell_gap(1)
        .show_legend()
    )


def microscope_link() -> dict[str, str]:
    """A data link from a `device` column to that device's Microscope dashboard, same time range.

    The project comes from the row's `project` column (every table that links has one).
    """
    url = (
        f"/d/{MICROSCOPE_UID}/microscope?var-device=${{__value.raw}}"
        "&var-project=${__data.fields.project}&${__url_time_range}"
    )
    return {"title": "Open ${__value.raw} in the Microscope dashboard", "url": url}


def device_links_override() -> list[dm.DynamicConfigValue]:
    """Override properties turning the `device` column into links to the Microscope dashboard."""
    return [dm.DynamicConfigValue(id_val="links", value=[microscope_link()])]


def version_timeline(title: str, where: tuple[str, ...], per_device: bool) -> statetimeline.Panel:
    """Which model version ran when: a coloured band per device, changes are rollouts."""
    select = Select(
        fields=(call("last", "model_version", "version"),),
        measurement="device_status",
        where=where,
        interval="$__interval",
        tags=("device",) if per_device else (),
        fill="none",
    )
    target = Target("A", select).alias("$tag_device" if per_device else "model version")
    return (
        statetimeline.Panel()
        .title(title)
        .description("The model version each device reported in its heartbeat; a change of colour is a rollout or a switch.")
        .datasource(datasource())
        .with_target(target)
        .show_value(cm.VisibilityMode.AUTO)
        .merge_values(True)
        .row_height(0.8)
        .color_scheme(dash.FieldColor().mode(dm.FieldColorModeId.PALETTE_CLASSIC_BY_NAME))
    )

