"""A small typed InfluxQL builder: the Grafana SDK has none, and raw strings drift from the schema.

Queries are raw InfluxQL (not Flux, not SQL) so the same dashboards run on InfluxDB 1.8+, 2.x
through its v1 compatibility API and 3.x. Grafana fills in `$timeFilter`, `$__interval` and the
dashboard variables before sending a query; `grafana.queries.interpolate` does the same for tests
and for `python -m grafana.check`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants

ResultFormat = Literal["time_series", "table", "logs"]
DATASOURCE_TYPE = "influxdb"
DATASOURCE_UID = "scopehive-influxdb"  # fixed forever: provisioning/datasources/influxdb.yaml uses it


def ident(name: str) -> str:
    """A double-quoted InfluxQL identifier (measurement, field, tag, alias)."""
    return '"' + name.replace('"', '\\"') + '"'


def matches(tag: str, variable: str) -> str:
    """`tag` equals one of the values of a (possibly multi-value) dashboard variable.

    Grafana renders a variable inside `/^...$/` as a regex alternation, so one form serves
    single values, multiple values and "All".
    """
    return f"{ident(tag)} =~ /^${{{variable}:regex}}$/"


def call(function: str, field_name: str, alias: str | None = None, *args: float | int) -> str:
    """`mean("count") AS "count"`: an aggregate or selector over one field, with an alias."""
    extra = "".join(f", {arg}" for arg in args)
    expression = f"{function}({ident(field_name)}{extra})"
    return f"{expression} AS {ident(alias)}" if alias else expression


@dataclass(frozen=True)
class Select:
    """One `SELECT ... FROM ... WHERE ... GROUP BY ...` statement.

    `time_range` is the time condition: `$timeFilter` (the dashboard's range) by default, or a fixed
    window such as `time > now() - 7d` for "last known state" panels that must not go blank
    when the dashboard shows a quiet hour.
    """

    fields: tuple[str, ...]
    measurement: str
    where: tuple[str, ...] = ()
    time_range: str = "$timeFilter"
    interval: str | None = None  # e.g. "$__interval": GROUP BY time(...)
    tags: tuple[str, ...] = ()
    fill: str | None = None  # "none", "null", "0", "previous"
    order_desc: bool = False
    limit: int | None = None

    def render(self) -> str:
        """The InfluxQL text, with Grafana macros left in place for Grafana to fill."""
        source = ident(self.measurement)
        conditions = [*self.where, self.time_range] if self.time_range else list(self.where)
        parts = [f"SELECT {', '.join(self.fields)} FROM {source}"]
        if conditions:
            parts.append("WHERE " + " AND ".join(conditions))
        group = ([f"time({self.interval})"] if self.interval else []) + [ident(t) for t in self.tags]
        if group:
            parts.append("GROUP BY " + ", ".join(group))
        if self.fill:
            parts.append(f"fill({self.fill})")
        if self.order_desc:
            parts.append("ORDER BY time DESC")
        if self.limit is not None:
            parts.append(f"LIMIT {self.limit}")
        return " ".join(parts)


def show_tag_values(measurement: str, key: str, where: tuple[str, ...] = ()) -> str:
    """A variable query: the values a tag takes (the device list, the project list, ...)."""
    text = f"SHOW TAG VALUES FROM {ident(measurement)} WITH KEY = {ident(key)}"
    return text + (" WHERE " + " AND ".join(where) if where else "")


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL target in the JSON shape Grafana's InfluxDB datasource stores."""

    def __init__(self, ref_id: str, query: str, result_format: ResultFormat, alias: str | None) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.alias = alias

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "datasource": {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID},
            "query": self.query,
            "rawQuery": True,
            "refId": self.ref_id,
            "resultFormat": self.result_format,
        }
        if self.alias:
            payload["alias"] = self.alias
        return payload


class Target(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder for a panel target: `Target("A", select).alias("$tag_class")`."""

    def __init__(self, ref_id: str, statement: Select | str) -> None:
        text = statement.render() if isinstance(statement, Select) else statement
        self._internal = InfluxQLQuery(ref_id, text, "time_series", None)

    def build(self) -> InfluxQLQuery:
        return self._internal

    def table(self) -> Target:
        """Return rows and columns (tags become columns) instead of one series per tag set."""
        self._internal.result_format = "table"
        return self

    def alias(self, alias: str) -> Target:
        """Series name; `$tag_class`, `$tag_device` and `$col` are expanded by Grafana."""
        self._internal.alias = alias
        return self
