"""Panels of objects over time (tracks, unique counts, motility, crossings, concentration) for the
Microscope dashboard (one device) and the Experiment dashboard (a project over all devices).

Sources: `track` (one point per finished track), `track_summary`, `crossing` and
`concentration` (every tracking.interval_s); see docs/metrics.md.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.models import common as cm

from grafana import common
from grafana.common import timeseries_panel
from grafana.influxql import Select, Target, call

Where = tuple[str, ...]


def unique_counts(where: Where) -> timeseries.Panel:
    """Distinct objects per class since tracking started (or was reset): not a sum of frame counts."""
    select = Select((call("max", "unique"),), "track_summary", where, interval="$__interval", tags=("class",), fill="none")
    return timeseries_panel("Unique objects by class", "none", [Target("A", select).alias("$tag_class")]).description(
        "Objects followed for at least tracking.min_frames frames, counted once each (track_summary.unique)."
    ).min(0)


def finished_tracks(where: Where) -> timeseries.Panel:
    """Tracks that ended per time slice, per class (every device of the project together)."""
    select = Select((call("count", "frames"),), "track", where, interval="$__interval", tags=("class",), fill="0")
    return (
        timeseries_panel("Finished tracks by class", "none", [Target("A", select).alias("$tag_class")])
        .description("Objects that left the field (or whose track ended) per time slice: one `track` point each.")
        .draw_style(cm.GraphDrawStyle.BARS)
        .fill_opacity(60)
        .min(0)
    )


def track_speed(where: Where) -> timeseries.Panel:
    """Median and quartiles of the average path speed of finished tracks, per class."""
    fields = (call("median", "speed_um_s", "median"), call("percentile", "speed_um_s", "p75", 75))
    select = Select(fields, "track", where, interval="$__interval", tags=("class",), fill="none")
    return timeseries_panel("Track speed by class (µm/s)", "µm/s", [Target("A", select).alias("$tag_class $col")]).description(
        "Average path speed of the tracks that ended in each slice, stage drift subtracted; needs um_per_pixel."
    ).min(0)


def crossings(where: Where) -> timeseries.Panel:
    """Objects crossing the counting line per interval, by class and direction."""
    select = Select((call("sum", "count"),), "crossing", where, interval="$__interval", tags=("class", "direction"), fill="0")
    return (
        timeseries_panel("Line crossings by class and direction", "none", [Target("A", select).alias("$tag_class $tag_direction")])
        .description("Counting line drawn in the panel's Live page; forward = the side its arrow points to.")
        .draw_style(cm.GraphDrawStyle.BARS)
        .fill_opacity(60)
        .min(0)
    )


def concentration(where: Where) -> timeseries.Panel:
    """Objects per µL with the 95 % Poisson interval (flow: crossings / volume flowed)."""
    fields = (call("last", "per_ul", "per µL"), call("last", "per_ul_low", "low"), call("last", "per_ul_high", "high"))
    select = Select(fields, "concentration", where, interval="$__interval", tags=("class",), fill="none")
    return (
        timeseries_panel("Concentration (objects/µL, 95 % CI)", "none", [Target("A", select).alias("$tag_class $col")])
        .description("Needs tracking.flow_rate_ul_min (and a counting line across the channel) or tracking.depth_um with um_per_pixel.")
        .override_by_regexp(".* (low|high)$", [common.dm.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [4, 4]})])
        .min(0)
    )


def motility_table(where: Where) -> table.Panel:
    """Per class over the range: tracks, median speed, quartiles, straightness, duration."""
    fields = (
        call("count", "frames", "tracks"),
        call("median", "speed_um_s", "median µm/s"),
        call("percentile", "speed_um_s", "q1 µm/s", 25),
        call("percentile", "speed_um_s", "q3 µm/s", 75),
        call("mean", "straightness", "straightness"),
        call("median", "duration_s", "median duration s"),
    )
    select = Select(fields, "track", where, tags=("class",))
    return common.table_panel("Motility over the range (finished tracks)", [Target("A", select).table()])

