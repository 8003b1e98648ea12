"""Shared pieces of every ScopeHive dashboard: datasource, variables, annotations, panel defaults.

Dashboard modules compose these; anything two dashboards both need lives here so that a change
(a unit, a colour, the datasource uid) is made once.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from device.colours import default_colour
from grafana.influxql import (
    DATASOURCE_TYPE,
    DATASOURCE_UID,
    Select,
    Target,
    ident,
    matches,
    show_tag_values,
)
from grafana.tags import TAG_APP, TAG_ROLLOUT, TAG_TRAINING  # noqa: F401 (re-exported for panels)

# Dashboard uids are part of every saved link and bookmark: never change them.
MICROSCOPE_UID = "scopehive-microscope"
FLEET_UID = "scopehive-fleet"
EXPERIMENT_UID = "scopehive-experiment"
DASHBOARD_TAGS = ["scopehive"]

# Box size measures: (variable value, label, Grafana unit). The value is the field prefix in
# docs/metrics.md (`<prefix>_mean|_median|_p90`); µm fields exist only on calibrated devices.
SIZE_MEASURES: tuple[tuple[str, str, str], ...] = (
    ("width_um", "width (µm, calibrated)", "µm"),
    ("height_um", "height (µm, calibrated)", "µm"),
    ("area_um2", "area (µm², calibrated)", "µm²"),
    ("width_px", "width (px)", "px"),
    ("height_px", "height (px)", "px"),
    ("area_px", "area (px²)", "px²"),
)


def datasource() -> cm.DataSourceRef:
    """The provisioned InfluxDB datasource (InfluxQL)."""
    return cm.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


def base_dashboard(uid: str, title: str, description: str) -> dash.Dashboard:
    """Defaults every ScopeHive dashboard shares: tags, refresh, shared crosshair, the viewer's time zone."""
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(DASHBOARD_TAGS)
        .refresh("10s")
        .time("now-15m", "now")
        .timezone("browser")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .editable()
    )


def project_variable(multi: bool) -> dash.QueryVariable:
    """Projects known to InfluxDB (from the `frame` measurement)."""
    variable = (
        dash.QueryVariable("project")
        .label("Project")
        .datasource(datasource())
        .query(show_tag_values("frame", "project"))
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )
    if multi:
        variable = variable.multi(True).include_all(True)
    return variable


def device_variable() -> dash.QueryVariable:
    """Devices that wrote frames for the chosen project(s)."""
    return (
        dash.QueryVariable("device")
        .label("Device")
        .datasource(datasource())
        .query(show_tag_values("frame", "device", (matches("project", "project"),)))
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )


def class_variable() -> dash.QueryVariable:
    """Object classes of the chosen project (from `class_stats`)."""
    return (
        dash.QueryVariable("class")
        .label("Class")
        .datasource(datasource())
        .query(show_tag_values("class_stats", "class", (matches("project", "project"),)))
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
    )


def size_variable() -> dash.CustomVariable:
    """Which box size the size panels show; µm is the default because calibrated setups are the norm."""
    options = [dm.VariableOption(selected=i == 0, text=label, value=value) for i, (value, label, _) in enumerate(SIZE_MEASURES)]
    return (
        dash.CustomVariable("size")
        .label("Box size")
        .description("µm measures need um_per_pixel configured on the device; choose a px measure otherwise")
        .values(", ".join(f"{label} : {value}" for value, label, _ in SIZE_MEASURES))
        .options(options)
        .current(options[0])
    )


def grafana_annotation(name: str, tag: str, color: str) -> dash.AnnotationQuery:
    """Organisation-wide Grafana annotations carrying `scopehive` and `tag` (see grafana.annotations)."""
    target = dash.AnnotationTarget().type("tags").tags([TAG_APP, tag]).match_any(False).limit(200)
    return (
        dash.AnnotationQuery()
        .name(name)
        .datasource(cm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .icon_color(color)
        .target(target)
    )


class InfluxAnnotationTarget(dm.AnnotationTarget):
    """An InfluxQL annotation query, in the target shape Grafana's InfluxDB datasource stores.

    The SDK's AnnotationTarget only models the built-in Grafana datasource (tags, limit).
    """

    def __init__(self, query: str, text_column: str, tags_column: str) -> None:
        super().__init__()
        self.query = query
        self.text_column = text_column
        self.tags_column = tags_column

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID},
            "fromAnnotations": True,
            "query": self.query,
            "queryType": "tags",
            "rawQuery": True,
            "refId": "Anno",
            "resultFormat": "table",
            "tagsColumn": self.tags_column,
            "textColumn": self.text_column,
        }


class _Built(cogbuilder.Builder[dm.AnnotationTarget]):
    def __init__(self, target: dm.AnnotationTarget) -> None:
        self._target = target

    def build(self) -> dm.AnnotationTarget:
        return self._target


def device_events_annotation(where: tuple[str, ...]) -> dash.AnnotationQuery:
    """Device events (`device_event`: model switched/rejected, source lost/restored, started) on the time axes."""
    query = Select((ident("message"), ident("kind"), ident("device")), "device_event", where).render()
    return (
        dash.AnnotationQuery()
        .name("Device events")
        .datasource(datasource())
        .enable(True)
        .icon_color("orange")
        .target(_Built(InfluxAnnotationTarget(query, text_column="message", tags_column="kind,device")))
    )


def rollout_and_training_annotations() -> list[cogbuilder.Builder[dm.AnnotationQuery]]:
    """Grafana's own dashboard annotations, then model rollouts and training runs (by tag, from anywhere)."""
    built_in = (
        dash.AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(cm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
        .built_in(1)
        .target(dash.AnnotationTarget().type("dashboard").limit(100).match_any(False).tags([]))
    )
    return [
        built_in,
        grafana_annotation("Model rollouts", TAG_ROLLOUT, "blue"),
        grafana_annotation("Training runs", TAG_TRAINING, "purple"),
    ]


def device_filter() -> tuple[str, ...]:
    """WHERE conditions selecting the dashboard's device in its project."""
    return (matches("device", "device"), matches("project", "project"))


def field_ref(name: str) -> str:
    """A quoted field or tag name, for hand-written SELECT lists."""
    return ident(name)


def timeseries_panel(title: str, unit: str, targets: list[Target]) -> timeseries.Panel:
    """A line chart with the house defaults: legend as a table with last and mean."""
    panel = (
        timeseries.Panel()
        .title(title)
        .datasource(datasource())
        .unit(unit)
        .line_width(1)
        .fill_opacity(10)
        .span(12)
        .height(8)
        .legend(legend())
    )
    for target in targets:
        panel = panel.with_target(target)
    return panel


# The demo model's classes in their order: a dashboard cannot read a project, so these names get the
# colour a new project gives class 0, 1, 2 (device/colours.py), as on the stream and in the panel.
DEMO_CLASSES = ("cell", "crystal", "debris")


def with_class_colours(panel: timeseries.Panel) -> timeseries.Panel:
    """Series named after a class (`cell`, `cell p90`, ...) drawn in that class's colour."""
    for index, name in enumerate(DEMO_CLASSES):
        colour = {"mode": "fixed", "fixedColor": default_colour(index)}
        panel = panel.override_by_regexp(f"^{name}( .*)?$", [dm.DynamicConfigValue(id_val="color", value=colour)])
    return panel


def legend() -> cb.VizLegendOptions:
    """Legend as a table under the chart with last, mean and max: what a scientist reads off first."""
    return (
        cb.VizLegendOptions()
        .display_mode(cm.LegendDisplayMode.TABLE)
        .placement(cm.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["lastNotNull", "mean", "max"])
    )


def stat_panel(title: str, unit: str, targets: list[Target]) -> stat.Panel:
    """A single big number (last value by default)."""
    panel = stat.Panel().title(title).datasource(datasource()).unit(unit).span(4).height(4)
    for target in targets:
        panel = panel.with_target(target)
    return panel


def table_panel(title: str, targets: list[Target]) -> table.Panel:
    """A table with the house defaults."""
    panel = table.Panel().title(title).datasource(datasource()).span(24).height(8)
    for target in targets:
        panel = panel.with_target(target)
    return panel


Layout = list[tuple[cogbuilder.Builder[dm.Panel], int, int, int, int]]


def add_panels(board: dash.Dashboard, layout: Layout) -> dash.Dashboard:
    """Pin panels on the 24-column grid as (panel, x, y, w, h) and number them in layout order.

    Positions are part of each dashboard's design, not flow; stable ids keep `?viewPanel=N` links working.
    """
    for number, (panel, x, y, w, h) in enumerate(layout, start=1):
        model = panel.build()
        model.id_val = number
        model.grid_pos = dm.GridPos(h=h, w=w, x=x, y=y)
        board = board.with_panel(panel)
    return board


def textbox_variable(name: str, label: str, default: str, description: str) -> dash.TextBoxVariable:
    """A free-text variable with a default (used for the live stream's address)."""
    option = dm.VariableOption(selected=True, text=default, value=default)
    return (
        dash.TextBoxVariable(name)
        .label(label)
        .description(description)
        .default_value(default)
        .current(option)
        .options([option])
    )
