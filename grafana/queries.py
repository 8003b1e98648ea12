"""Every InfluxQL query of a dashboard, and Grafana's macro/variable expansion for running them outside Grafana.

Used by the tests (each query must return the series its panel expects) and by
`python -m grafana.check`, which runs a dashboard's queries against a real InfluxDB so a lab can
see that its data and the dashboards agree before opening Grafana.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Characters Grafana escapes when it formats a value with `:regex`.
_REGEX_SPECIAL = re.compile(r"([-\[\]{}()*+?.,\\^$|#\s/])")
_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]|\$(\w+)")


@dataclass(frozen=True)
class DashboardQuery:
    """One query and where it lives: a panel target, a variable or an annotation."""

    kind: str  # "panel", "variable" or "annotation"
    owner: str  # panel title, variable name or annotation name
    ref_id: str
    query: str
    result_format: str
    alias: str | None = None


def dashboard_queries(dashboard: Mapping[str, Any]) -> Iterator[DashboardQuery]:
    """All InfluxQL in a dashboard JSON, in document order."""
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            if "query" in target:
                yield DashboardQuery(
                    "panel", panel["title"], target["refId"], target["query"], target.get("resultFormat", "time_series"), target.get("alias")
                )
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            yield DashboardQuery("variable", variable["name"], "", variable["query"], "table")
    for annotation in dashboard.get("annotations", {}).get("list", []):
        target = annotation.get("target") or {}
        if "query" in target:
            yield DashboardQuery("annotation", annotation["name"], target.get("refId", ""), target["query"], "table")


def format_value(value: str | list[str], fmt: str | None) -> str:
    """A variable's value as Grafana writes it into an InfluxQL query."""
    values = [value] if isinstance(value, str) else list(value)
    if fmt == "regex":
        escaped = [_REGEX_SPECIAL.sub(r"\\\1", v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt in (None, "raw", "text"):
        return values[0] if len(values) == 1 else "{" + ",".join(values) + "}"
    raise ValueError(f"variable format ':{fmt}' is not supported here: use ':regex', ':raw' or none")


def interpolate(query: str, variables: Mapping[str, str | list[str]], time_filter: str, interval: str) -> str:
    """Expand `$timeFilter`, `$__interval` and dashboard variables the way Grafana does before sending."""
    text = query.replace("$timeFilter", time_filter).replace("$__interval", interval)

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3) or match.group(4)
        if name not in variables:
            raise KeyError(f"query uses ${name} but no value was given for it: {query}")
        return format_value(variables[name], match.group(2))

    return _VARIABLE.sub(replace, text)
