"""The Microscope dashboard: one device, live — what a scientist keeps open during an experiment.

Variables `project` and `device` pick the microscope; `size` picks the box measure. The live
stream is the device's own MJPEG endpoint shown in an HTML text panel (Grafana core has no video
panel), which is why the Grafana image sets `GF_PANELS_DISABLE_SANITIZE_HTML=true`.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import heatmap, stat, table, text, timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import text as tm

from grafana import common, drift, tracking
from grafana.common import device_filter, stat_panel, timeseries_panel
from grafana.influxql import Select, Target, call
from grafana.panels import quantile_heatmap, quantile_select, version_timeline

STREAM_HTML = """<div style="height:100%;display:flex;flex-direction:column;align-items:center;justify-content:center">
<img src="${stream_scheme}://${device}${stream_domain}:${stream_port}/stream.mjpg?token=${stream_token}"
     alt="The live stream of ${device} is not reachable from this browser: check the stream variables (docs/dashboards.md)"
     style="max-width:100%;max-height:calc(100% - 1.5em);object-fit:contain">
<a href="${stream_scheme}://${device}${stream_domain}:${stream_port}/" target="_blank">open the panel of ${device}</a>
</div>"""

RECENT = "time > now() - 7d"  # "last known" panels: stay filled when the chosen range is quiet


def live_stream() -> text.Panel:
    """The annotated live stream (boxes, class colours, counts, FPS) straight from the device."""
    return (
        text.Panel()
        .title("Live: ${device}")
        .description("MJPEG from the device's /stream.mjpg; the browser fetches it directly, so the device must be reachable from here.")
        .mode(tm.TextMode.HTML)
        .content(STREAM_HTML)
    )


def model_info() -> stat.Panel:
    """Model, version, backend and source state from the newest heartbeat."""
    select = Select(
        fields=(
            call("last", "model", "model"),
            call("last", "model_version", "version"),
            call("last", "backend", "backend"),
            call("last", "source_state", "camera"),
        ),
        measurement="device_status",
        where=device_filter(),
        time_range=RECENT,
    )
    return (
        stat_panel("Model and camera", "none", [Target("A", select).table()])
        .description("What the device runs now, from its last heartbeat (last 7 days).")
        .reduce_options(cb.ReduceDataOptions().values(False).calcs(["lastNotNull"]).fields("/^(model|version|backend|camera)$/"))
        .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
        .color_mode(cm.BigValueColorMode.NONE)
        .graph_mode(cm.BigValueGraphMode.NONE)
    )


def now_numbers() -> stat.Panel:
    """Objects per frame, FPS and latency right now, with sparklines."""
    select = Select(
        fields=(call("mean", "count", "objects/frame"), call("mean", "fps", "FPS"), call("mean", "latency_ms", "latency ms")),
        measurement="frame",
        where=device_filter(),
        interval="$__interval",
        fill="none",
    )
    return (
        stat_panel("Now", "none", [Target("A", select).alias("$col")])
        .reduce_options(cb.ReduceDataOptions().values(False).calcs(["lastNotNull"]))
        .graph_mode(cm.BigValueGraphMode.AREA)
        .decimals(1)
    )


def counts_per_class() -> timeseries.Panel:
    """Objects per frame, one line per class plus the total."""
    by_class = Select(
        fields=(call("mean", "count"),), measurement="class_stats", where=device_filter(),
        interval="$__interval", tags=("class",), fill="none",
    )
    total = Select(
        fields=(call("mean", "count"),), measurement="frame", where=device_filter(), interval="$__interval", fill="none"
    )
    panel = timeseries_panel(
        "Objects per frame by class", "none", [Target("A", by_class).alias("$tag_class"), Target("B", total).alias("all classes")]
    ).description("Mean number of detected objects per frame in each time slice (score >= the model's threshold).")
    return common.with_class_colours(panel)


def size_heatmap() -> heatmap.Panel:
    """Distribution of per-frame median box size over time, in the chosen measure."""
    where = (*device_filter(), '"count" > 0')
    target = Target("A", quantile_select("${size}_median", "class_stats", where))
    return quantile_heatmap(
        "Box size distribution: ${size:text}",
        "Per time slice, ten quantiles of the per-frame, per-class median box size. µm measures need um_per_pixel on the device.",
        target,
        None,
    )


def size_per_class() -> timeseries.Panel:
    """Median and 90th-percentile box size per class over time."""
    where = (*device_filter(), '"count" > 0')
    median = Select((call("mean", "${size}_median"),), "class_stats", where, interval="$__interval", tags=("class",), fill="none")
    p90 = Select((call("mean", "${size}_p90"),), "class_stats", where, interval="$__interval", tags=("class",), fill="none")
    return common.with_class_colours(timeseries_panel(
        "Box size by class: ${size:text}", "none",
        [Target("A", median).alias("$tag_class median"), Target("B", p90).alias("$tag_class p90")],
    ).override_by_regexp(".* p90$", [dm.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]})]))


def score_heatmap() -> heatmap.Panel:
    """How confident the model is: distribution of per-class mean scores over time."""
    where = (*device_filter(), '"count" > 0')
    return quantile_heatmap(
        "Score distribution",
        "Per time slice, ten quantiles of the per-frame, per-class mean detection score. A drift down often means the sample or the optics changed.",
        Target("A", quantile_select("score_mean", "class_stats", where)),
        "percentunit",
    )


def fps() -> timeseries.Panel:
    """Processing rate."""
    select = Select((call("mean", "fps", "FPS"),), "frame", device_filter(), interval="$__interval", fill="none")
    return timeseries_panel("Frames per second", "fps", [Target("A", select).alias("FPS")]).span(8).min(0)


def latency() -> timeseries.Panel:
    """Capture-to-result latency and model time."""
    select = Select(
        (call("mean", "latency_ms", "latency"), call("max", "latency_ms", "latency max"), call("mean", "inference_ms", "inference")),
        "frame", device_filter(), interval="$__interval", fill="none",
    )
    return timeseries_panel("Latency", "ms", [Target("A", select).alias("$col")]).span(8).min(0)


def dropped_frames() -> timeseries.Panel:
    """Frames the capture thread dropped because processing was busy."""
    select = Select((call("sum", "dropped_frames", "dropped"),), "frame", device_filter(), interval="$__interval", fill="0")
    return (
        timeseries_panel("Dropped frames", "none", [Target("A", select).alias("dropped frames")])
        .span(8)
        .draw_style(cm.GraphDrawStyle.BARS)
        .fill_opacity(60)
        .min(0)
    )


def outbox() -> timeseries.Panel:
    """Points waiting for InfluxDB and points lost to the outbox's disk budget."""
    select = Select(
        (call("last", "outbox_depth", "waiting"), call("last", "outbox_dropped", "dropped (total)")),
        "device_status", device_filter(), interval="$__interval", fill="none",
    )
    return timeseries_panel("Outbox", "none", [Target("A", select).alias("$col")]).description(
        "Points buffered on the device until InfluxDB accepts them; 'dropped' grows only when the disk budget was exceeded."
    ).min(0)


def temperatures() -> timeseries.Panel:
    """CPU and GPU temperature where the device can read them."""
    select = Select(
        (call("mean", "cpu_temp_c", "CPU"), call("mean", "gpu_temp_c", "GPU")),
        "device_status", device_filter(), interval="$__interval", fill="none",
    )
    return timeseries_panel("Temperature", "celsius", [Target("A", select).alias("$col")])


def events() -> table.Panel:
    """Newest device events (model switched or rejected, source lost or restored, started)."""
    select = Select(
        (common.field_ref("kind"), common.field_ref("message")), "device_event", device_filter(), order_desc=True, limit=50
    )
    return common.table_panel("Device events", [Target("A", select).table()])


def stream_variables() -> list[common.dash.TextBoxVariable | common.dash.CustomVariable]:
    """Where the browser finds the device's stream: scheme://<device><domain>:<port>/stream.mjpg?token=<token>.

    balenaOS publishes every device on the LAN as `<hostname>.local` (mDNS), so naming the
    device (SCOPEHIVE_DEVICE_NAME) after its hostname makes the default work with no setup.
    """
    scheme = common.dash.CustomVariable("stream_scheme").label("Stream scheme").values("http,https")
    scheme = scheme.current(common.dm.VariableOption(selected=True, text="http", value="http"))
    return [
        scheme,
        common.textbox_variable("stream_domain", "Stream domain", ".local", "Appended to the device name to reach it from this browser"),
        common.textbox_variable("stream_port", "Stream port", "8080", "The device's web port (stream and panel)"),
        common.textbox_variable(
            "stream_token", "Stream token", "",
            "The device's SCOPEHIVE_STREAM_TOKEN; needed only when its panel has a password (the stream then needs a login or this token)",
        ),
    ]


def dashboard() -> common.dash.Dashboard:
    """Assemble the Microscope dashboard."""
    board = common.base_dashboard(
        common.MICROSCOPE_UID, "ScopeHive / Microscope", "One microscope live: stream, counts, sizes, scores, speed, health."
    )
    for variable in [common.project_variable(multi=False), common.device_variable(), common.size_variable(), *stream_variables()]:
        board = board.with_variable(variable)
    board = board.annotation(common.device_events_annotation(device_filter()))
    for annotation in common.rollout_and_training_annotations():
        board = board.annotation(annotation)
    return common.add_panels(board, [
        (live_stream(), 0, 0, 12, 14),
        (model_info(), 12, 0, 12, 4),
        (now_numbers(), 12, 4, 12, 4),
        (version_timeline("Model version", device_filter(), per_device=False), 12, 8, 12, 6),
        (counts_per_class(), 0, 14, 12, 9),
        (size_heatmap(), 12, 14, 12, 9),
        (score_heatmap(), 0, 23, 12, 9),
        (size_per_class(), 12, 23, 12, 9),
        (fps(), 0, 32, 8, 7),
        (latency(), 8, 32, 8, 7),
        (dropped_frames(), 16, 32, 8, 7),
        (outbox(), 0, 39, 12, 7),
        (temperatures(), 12, 39, 12, 7),
        (events(), 0, 46, 24, 7),
        *tracking_layout(53),
        (drift.model_drift(), 0, 75, 24, 8),  # late in the list: the panels above keep their ids
        (drift.count_qc(), 0, 83, 24, 7),
    ])


def tracking_layout(top: int) -> common.Layout:
    """Objects over time, below the health rows: unique counts, crossings, speed, concentration."""
    f = device_filter()
    return [
        (tracking.unique_counts(f), 0, top, 12, 8),
        (tracking.crossings(f), 12, top, 12, 8),
        (tracking.track_speed(f), 0, top + 8, 12, 8),
        (tracking.concentration(f), 12, top + 8, 12, 8),
        (tracking.motility_table(f), 0, top + 16, 24, 6),
    ]
