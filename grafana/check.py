"""Run every dashboard query against a real InfluxDB: `python -m grafana.check --project P --device D`.

Before (or instead of) opening Grafana, this shows whether the lab's InfluxDB holds what each
panel needs: one line per query with the number of series and values it returned, exit status 1
if any query failed or came back empty. Variables are resolved as Grafana does it: each query
variable's own query runs first (the given --project/--device or its first value; all values for
multi-value variables), custom variables take --size or their default.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import requests

from grafana import build
from grafana.queries import dashboard_queries, interpolate


class InfluxQL:
    """The v1 `/query` endpoint (InfluxDB 1.x, 2.x compatibility API, 3.x)."""

    def __init__(self, url: str, database: str, token: str) -> None:
        self.url, self.database = url.rstrip("/"), database
        self.headers = {"Authorization": f"Token {token}"} if token else {}

    def series(self, query: str) -> list[dict[str, Any]]:
        response = requests.post(f"{self.url}/query", params={"db": self.database}, data={"q": query}, headers=self.headers, timeout=30)
        if response.status_code in (401, 403):
            raise RuntimeError(f"InfluxDB refused the credentials ({response.status_code}): check --token")
        response.raise_for_status()
        result = response.json()["results"][0]
        if "error" in result:
            raise RuntimeError(result["error"])
        return list(result.get("series", []))


def resolve_variables(dashboard: dict[str, Any], influx: InfluxQL, chosen: dict[str, str], time_filter: str) -> dict[str, str | list[str]]:
    """Values for the dashboard's variables, in dashboard order (later ones may use earlier ones)."""
    values: dict[str, str | list[str]] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        name = variable["name"]
        if name in chosen:
            values[name] = chosen[name]
        elif variable["type"] == "query":
            found = [str(row[-1]) for s in influx.series(interpolate(variable["query"], values, time_filter, "1m")) for row in s["values"]]
            if not found:
                raise RuntimeError(f"variable {name} has no values ({variable['query']}): is this the right database?")
            values[name] = found if variable.get("multi") else found[0]
        else:
            values[name] = str(variable.get("current", {}).get("value", ""))
    return values


def check(dashboard_name: str, influx: InfluxQL, chosen: dict[str, str], time_filter: str) -> int:
    """Print one line per query of one dashboard; returns the number of empty or failed queries."""
    dashboard = json.loads((build.OUTPUT_DIR / f"{dashboard_name}.json").read_text(encoding="utf-8"))
    values = resolve_variables(dashboard, influx, chosen, time_filter)
    problems = 0
    for query in dashboard_queries(dashboard):
        label = f"{dashboard_name} / {query.kind} {query.owner} [{query.ref_id}]"
        try:
            series = influx.series(interpolate(query.query, values, time_filter, "10s"))
        except (RuntimeError, requests.RequestException) as exc:
            print(f"ERROR {label}: {exc}")
            problems += 1
            continue
        count = sum(1 for s in series for row in s["values"] for v in row[1:] if v is not None)
        print(f"{'ok   ' if count else 'EMPTY'} {label}: {len(series)} series, {count} values")
        problems += 0 if count else 1
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grafana.check", description=__doc__)
    parser.add_argument("--influx-url", default="http://localhost:8086", help="InfluxDB base URL")
    parser.add_argument("--database", default="scopehive", help="database (1.x, 3.x) or bucket (2.x)")
    parser.add_argument("--token", default="", help="API token, or user:password for 1.8 with auth")
    parser.add_argument("--project", help="project to check (default: the first one found)")
    parser.add_argument("--device", help="device for the Microscope dashboard (default: the first one found)")
    parser.add_argument("--size", default="width_px", help="box size measure, e.g. width_um on calibrated devices")
    parser.add_argument("--range", default="1h", help="how far back to look, InfluxQL duration (e.g. 15m, 6h)")
    parser.add_argument("--dashboard", choices=[n.removesuffix(".json") for n in build.DASHBOARDS], action="append")
    args = parser.parse_args(argv)
    influx = InfluxQL(args.influx_url, args.database, args.token)
    chosen = {k: v for k, v in {"project": args.project, "device": args.device, "size": args.size}.items() if v}
    problems = 0
    try:
        for name in args.dashboard or [n.removesuffix(".json") for n in build.DASHBOARDS]:
            problems += check(name, influx, chosen, f"time > now() - {args.range}")
    except (RuntimeError, requests.RequestException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{problems} empty or failed queries" if problems else "every panel has data")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
