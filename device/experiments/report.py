"""Downloads of one experiment: per-frame CSV, per-object CSV and a self-contained HTML report.

The report is one file (inline SVG plots, inline CSS, no scripts, nothing fetched) with the
provenance a reader needs to trust the numbers: device, model name/version/sha256 and its
validation metrics, thresholds, calibration, software version, start and stop times.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from html import escape
from typing import Any

from device.experiments import svg
from device.experiments.store import Experiment
from device.tracking.report import tracks_section

FRAME_HEADER = ["time_utc", "ts_us", "frame_index", "analysed", "focus", "saturated_frac", "dark_frac", "count"]


def _iso_us(ts_us: int) -> str:
    return datetime.fromtimestamp(ts_us / 1e6, timezone.utc).isoformat(timespec="microseconds")


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return round(value, 6) if isinstance(value, float) else value


def frames_csv(frames: list[dict[str, Any]], classes: list[str]) -> str:
    """One row per frame; count columns are empty (never 0) for frames that were not analysed."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*FRAME_HEADER, *(f"count_{c}" for c in classes), "density_per_mm2", "fov_mm2", "um_per_pixel",
                     "model", "model_version"])
    for f in frames:
        counts = f["counts"]
        per_class = [counts.get(c, 0) if counts is not None else None for c in classes]
        density = f["count"] / f["fov_mm2"] if f["count"] is not None and f["fov_mm2"] else None
        writer.writerow([_cell(v) for v in (_iso_us(f["ts_us"]), f["ts_us"], f["frame_index"], f["analysed"], f["focus"],
                                            f["saturated"], f["dark"], f["count"], *per_class, density, f["fov_mm2"],
                                            f["um_per_pixel"], f["model"], f["model_version"])])
    return out.getvalue()


def objects_csv(objects: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One row per detected object of an analysed frame, streamed (an experiment can hold millions)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time_utc", "ts_us", "class", "x1", "y1", "x2", "y2", "width_um", "height_um", "area_um2",
                     "size_um", "score"])
    for n, o in enumerate(objects, 1):
        size = math.sqrt(o["width_um"] * o["height_um"]) if o["width_um"] is not None else None
        writer.writerow([_cell(v) for v in (_iso_us(o["ts_us"]), o["ts_us"], o["class"], o["x1"], o["y1"], o["x2"],
                                            o["y2"], o["width_um"], o["height_um"], o["area_um2"], size, o["score"])])
        if n % 2000 == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}g}" if isinstance(value, float) else escape(str(value))


def _rows(pairs: Iterable[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th>{escape(k)}</th><td>{v if isinstance(v, str) else _f(v)}</td></tr>" for k, v in pairs)


def _class_table(summary: dict[str, Any]) -> str:
    unit = summary["size_unit"]
    head = ("class", "frames", "objects / frame (mean ± sd)", "95 % CI", "density / mm²", f"size median ({unit})",
            f"size IQR ({unit})", "objects")
    lines = ["<table class='grid'><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for name, stats in summary["classes"].items():
        c, s = stats["count"], stats["size"]
        ci = f"{c['ci95'][0]:.3g} – {c['ci95'][1]:.3g}" if c["ci95"] else "–"
        iqr = f"{s['q25']:.3g} – {s['q75']:.3g}" if s["q25"] is not None else "–"
        cells = (escape(name), str(c["frames"]), f"{_f(c['mean'])} ± {_f(c['sd'])}", ci, _f(c["density_per_mm2"]),
                 _f(s["median"]), iqr, str(s["objects"]))
        lines.append("<tr>" + "".join(f"<td>{v}</td>" for v in cells) + "</tr>")
    return "".join(lines) + "</table>"


def _plots(summary: dict[str, Any]) -> str:
    course = summary["time_course"]
    plots = [svg.line_chart("Objects per frame over time", course["t_s"], course["mean_count"], "time since start (s)",
                            "objects per analysed frame")]
    plots.append(svg.line_chart("Excluded frames over time", course["t_s"], {"excluded": course["excluded"]},
                                "time since start (s)", "frames excluded"))
    for name, stats in summary["classes"].items():
        hist = stats["size"]["histogram"]
        if hist:
            plots.append(svg.histogram(f"Size of {name} (n = {stats['size']['objects']})", hist["edges"], hist["counts"],
                                       f"size, sqrt(width x height) ({summary['size_unit']})"))
    return "".join(f"<figure>{p}</figure>" for p in plots)


def _metrics(metrics: dict[str, Any]) -> str:
    """The card's headline validation figures (numbers at its top level); the rest is in the bundle."""
    shown = [f"{escape(k)} {v:.3f}" for k, v in sorted(metrics.items()) if isinstance(v, float | int) and not isinstance(v, bool)]
    return ", ".join(shown) or "none in the model card"


def _calibration(experiment: Experiment, summary: dict[str, Any]) -> str:
    cal = experiment.calibration
    if cal is not None:
        return escape(f"profile {cal.name}: {cal.um_per_pixel} µm/px ({cal.objective} {cal.camera})".strip())
    scales = summary.get("um_per_pixel") or []
    if scales:
        return escape(f"device default: {', '.join(str(s) for s in scales)} µm/px (no profile chosen)")
    return "none (sizes in px)"


def html_report(experiment: Experiment, summary: dict[str, Any]) -> str:
    """The whole report as one HTML document."""
    req, prov = experiment.request, experiment.provenance
    model = prov.get("model") or {}
    frames = summary["frames"]
    excluded = ", ".join(f"{k} {v}" for k, v in frames["excluded_by_reason"].items()) or "none"
    info = _rows([("Experiment", experiment.id), ("Name", req.name), ("Sample", req.sample), ("Operator", req.operator),
                  ("Objective", req.objective), ("Notes", escape(req.notes)), ("Device", experiment.device),
                  ("Project", experiment.project), ("Started (UTC)", experiment.public()["started_iso"]),
                  ("Stopped (UTC)", experiment.public()["stopped_iso"] or "running"),
                  ("Duration (s)", experiment.public()["elapsed_s"])])
    figures = _rows([("Frames recorded", frames["total"]), ("Frames analysed", frames["analysed"]),
                     ("Frames excluded", f"{frames['excluded']} ({escape(excluded)})"),
                     ("Field of view (mm²)", summary["fov_mm2"]),
                     ("All objects / frame", summary["total"]["mean"]), ("All objects / mm²", summary["total"]["density_per_mm2"])])
    provenance = _rows([("Model", f"{escape(str(model.get('name', 'none')))} {escape(str(model.get('version', '')))}"),
                        ("Model sha256", str(model.get("sha256", "–"))),
                        ("Validation metrics", _metrics(model.get("metrics") or {})),
                        ("Score threshold", model.get("score_threshold")),
                        ("Quality gates", escape(json.dumps(prov.get("quality", {}), sort_keys=True))),
                        ("Calibration", _calibration(experiment, summary)),
                        ("Source", str(prov.get("source", "–"))), ("Software", f"ScopeHive {escape(str(prov.get('software', '?')))}")])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Experiment {escape(req.name)} · ScopeHive report</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;color:#1d2939;max-width:1200px}}h1{{margin-bottom:0}}
table{{border-collapse:collapse;margin:8px 0 16px}}th,td{{text-align:left;padding:3px 10px;border-bottom:1px solid #eaecf0;vertical-align:top}}
table.grid th{{background:#f2f4f7}}figure{{display:inline-block;margin:6px}}.muted{{color:#667085}}</style></head>
<body><h1>{escape(req.name)}</h1><p class="muted">ScopeHive experiment report · generated {datetime.now(timezone.utc).isoformat(timespec="seconds")}</p>
<h2>Experiment</h2><table>{info}</table>
<h2>Summary</h2><table>{figures}</table>{_class_table(summary)}
<p class="muted">Counts are means over analysed frames only; excluded frames (out of focus, badly exposed, no model,
unusable) have no count. 95 % CI: mean ± t·sd/√n. Size: sqrt(box width × box height).</p>
{tracks_section(summary.get("tracking"))}
<h2>Plots</h2>{_plots(summary)}
<h2>Provenance</h2><table>{provenance}</table></body></html>
"""
