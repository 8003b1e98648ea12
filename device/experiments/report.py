"""Downloads of one experiment: per-frame CSV, per-object CSV, per-object GeoJSON (QuPath) and a
self-contained HTML report.

Everything in them may come from a person or a bundle (names, notes, class names), so the report
is rendered by an autoescaping Jinja2 template and CSV text cells cannot start a formula.

The report is one file (inline SVG plots, inline CSS, no scripts, nothing fetched) with the
provenance a reader needs to trust the numbers: device, model name/version/sha256 and its
validation metrics, thresholds, calibration, software version, start and stop times.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from device.colours import class_colours, default_colour, hex_to_bgr
from device.experiments import svg
from device.experiments.store import Experiment
from device.redact import redact
from device.tracking.report import tracks_section

_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent), autoescape=True, undefined=StrictUndefined)
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")  # OWASP, CSV injection
FRAME_HEADER = ["time_utc", "ts_us", "frame_index", "analysed", "focus", "saturated_frac", "dark_frac", "count"]
# Where the image came from (the file's own metadata, device/sources): what napari or QuPath need
# to put a box back on its image. Empty for cameras and synthetic frames.
IMAGE_COLUMNS = ("file", "plane_t", "plane_z", "plane_c", "plane_p", "channel")
STAGE_COLUMNS = ("stage_x_um", "stage_y_um", "stage_z_um")


def _iso_us(ts_us: int) -> str:
    return datetime.fromtimestamp(ts_us / 1e6, timezone.utc).isoformat(timespec="microseconds")


def _cell(value: Any) -> Any:
    """A CSV cell: empty for no value, numbers as numbers (-3 stays -3), text that a spreadsheet
    would run as a formula (a model or class name "=HYPERLINK(...)", "@SUM(...)") prefixed with
    a single quote, as OWASP advises, so it opens as the text it is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_TRIGGERS) else value
    return round(value, 6) if isinstance(value, float) else value


def _csv_writer(out: io.StringIO) -> Any:
    """Text cells in double quotes (OWASP; a CR or tab inside a name cannot break the row), numbers bare."""
    return csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)


def frames_csv(frames: list[dict[str, Any]], classes: list[str]) -> str:
    """One row per frame; count columns are empty (never 0) for frames that were not analysed.
    Where the model corrects counts on dense frames (a bundle with count_models), `count_estimate`
    and `count_estimate_<class>` follow the image columns (empty for frames without one)."""
    out = io.StringIO()
    writer = _csv_writer(out)
    estimated = any(f.get("estimates") for f in frames)
    writer.writerow([*FRAME_HEADER, *(f"count_{c}" for c in classes), "density_per_mm2", "fov_mm2", "um_per_pixel",
                     "model", "model_version", "calibration", *IMAGE_COLUMNS, *STAGE_COLUMNS,
                     *(["count_estimate", *(f"count_estimate_{c}" for c in classes)] if estimated else [])])
    for f in frames:
        counts = f["counts"]
        per_class = [counts.get(c, 0) if counts is not None else None for c in classes]
        density = f["count"] / f["fov_mm2"] if f["count"] is not None and f["fov_mm2"] else None
        image = f.get("image") or {}
        writer.writerow([_cell(v) for v in (_iso_us(f["ts_us"]), f["ts_us"], f["frame_index"], f["analysed"], f["focus"],
                                            f["saturated"], f["dark"], f["count"], *per_class, density, f["fov_mm2"],
                                            f["um_per_pixel"], f["model"], f["model_version"], f.get("calibration"),
                                            *(image.get(c) for c in (*IMAGE_COLUMNS, *STAGE_COLUMNS)),
                                            *(_estimate_cells(f.get("estimates"), classes) if estimated else []))])
    return out.getvalue()


def _estimate_cells(estimates: dict[str, int] | None, classes: list[str]) -> list[Any]:
    if not estimates:
        return [None] * (1 + len(classes))
    return [sum(estimates.values()), *(estimates.get(c) for c in classes)]


def objects_csv(objects: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One row per detected object of an analysed frame, streamed (an experiment can hold millions)."""
    out = io.StringIO()
    writer = _csv_writer(out)
    writer.writerow(["time_utc", "ts_us", "class", "x1", "y1", "x2", "y2", "width_um", "height_um", "area_um2",
                     "size_um", "score", "frame_index", *IMAGE_COLUMNS])
    for n, o in enumerate(objects, 1):
        size = math.sqrt(o["width_um"] * o["height_um"]) if o["width_um"] is not None else None
        image = o.get("image") or {}
        writer.writerow([_cell(v) for v in (_iso_us(o["ts_us"]), o["ts_us"], o["class"], o["x1"], o["y1"], o["x2"],
                                            o["y2"], o["width_um"], o["height_um"], o["area_um2"], size, o["score"],
                                            o.get("frame_index"), *(image.get(c) for c in IMAGE_COLUMNS))])
        if n % 2000 == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _rgb(colour: str) -> list[int]:
    b, g, r = hex_to_bgr(colour)
    return [r, g, b]


def _feature(o: dict[str, Any], colour: str) -> dict[str, Any]:
    """One object as a QuPath detection: its box as a closed Polygon ring in image pixels (x right,
    y down, QuPath's own coordinates), the class as its classification, the sizes as measurements."""
    x1, y1, x2, y2 = (float(o[k]) for k in ("x1", "y1", "x2", "y2"))
    measurements: dict[str, float] = {"score": float(o["score"]), "width_px": round(x2 - x1, 3), "height_px": round(y2 - y1, 3)}
    if o["width_um"] is not None and o["height_um"] is not None:
        measurements.update(width_um=float(o["width_um"]), height_um=float(o["height_um"]),
                            area_um2=float(o["area_um2"]), size_um=math.sqrt(o["width_um"] * o["height_um"]))
    image = o.get("image") or {}
    geometry: dict[str, Any] = {"type": "Polygon", "coordinates": [[[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]]}
    if "plane_t" in image or "plane_z" in image:  # QuPath's ImagePlane (c -1: every channel)
        geometry["plane"] = {"c": -1, "z": int(image.get("plane_z", 0)), "t": int(image.get("plane_t", 0))}
    properties: dict[str, Any] = {
        "objectType": "detection", "isLocked": False,
        "classification": {"name": str(o["class"]), "color": _rgb(colour)},
        "measurements": {k: v for k, v in measurements.items() if math.isfinite(v)},
        "time_utc": _iso_us(o["ts_us"]), "frame_index": o.get("frame_index"),
        **{k: image[k] for k in IMAGE_COLUMNS if k in image},
    }
    return {"type": "Feature", "id": f"{o['ts_us']}-{o['n']}", "geometry": geometry, "properties": properties}


def objects_geojson(objects: Iterable[dict[str, Any]], classes: Sequence[str] = (), file: str | None = None) -> Iterator[str]:
    """The objects as one GeoJSON FeatureCollection (RFC 7946) that QuPath imports as detections
    (File > Import objects, or drag the file onto the image), streamed. Class colours are the
    defaults of device/colours.py by the class's place in `classes`; `file` keeps the objects of
    one image file, as QuPath wants one image's objects at a time."""
    colours: dict[str, str] = {name: default_colour(i) for i, name in enumerate(classes)}
    yield '{"type":"FeatureCollection","features":['
    first, batch = True, []
    n = 0
    for o in objects:
        if file is not None and (o.get("image") or {}).get("file") != file:
            continue
        colour = colours.setdefault(str(o["class"]), default_colour(len(colours)))
        n += 1
        text = json.dumps(_feature({**o, "n": n}, colour), separators=(",", ":"), allow_nan=False, ensure_ascii=False)
        batch.append(text if first else "," + text)
        first = False
        if len(batch) >= 2000:
            yield "".join(batch)
            batch = []
    yield "".join(batch) + "]}\n"


def frame_geojson(boxes: Sequence[Sequence[float]], class_names: Sequence[str], scores: Sequence[float], colours: Sequence[str],
                  captured_at: float, file: str | None = None, um_per_pixel: float | None = None) -> str:
    """One frame's boxes (a captured image's annotations, or the newest analysed frame's
    detections) as the same QuPath FeatureCollection the experiment export writes."""
    ts_us = int(captured_at * 1e6)
    features = []
    for n, ((x1, y1, x2, y2), name, score, colour) in enumerate(zip(boxes, class_names, scores, colours, strict=True), 1):
        w_um = (x2 - x1) * um_per_pixel if um_per_pixel else None
        h_um = (y2 - y1) * um_per_pixel if um_per_pixel else None
        o = {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score, "class": name, "ts_us": ts_us, "n": n,
             "width_um": w_um, "height_um": h_um, "area_um2": w_um * h_um if w_um and h_um else None,
             "image": {"file": file} if file else {}}
        features.append(_feature(o, colour))
    return json.dumps({"type": "FeatureCollection", "features": features}, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def _f(value: Any, digits: int = 3) -> str:
    """A value as the report shows it (plain text: the template escapes it)."""
    if value is None:
        return "–"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


CLASS_HEAD = ("class", "unique objects (tracks)", "objects / frame (mean ± sd)", "95 % CI of the mean (blocks)",
              "density / mm²", "size median ({unit})", "size IQR ({unit})", "object-frames (boxes summed over frames)")
EXCLUDED_COLOUR = "#98a2b3"  # grey: excluded frames are "not analysed", never the green of a class or of "ok"


def colours_of(classes: list[str], chosen: dict[str, str] | None = None) -> dict[str, str]:
    """Each class's colour as the stream draws it (device/colours.py: the project's choice, else
    the default for its position in the model's class list, which is the summary's order)."""
    safe = {k: v for k, v in (chosen or {}).items() if re.fullmatch(r"#[0-9a-fA-F]{6}", str(v))}  # goes into style=""
    return dict(zip(classes, class_colours(classes, safe), strict=True))


def _unique(summary: dict[str, Any], name: str) -> str:
    tracking = summary.get("tracking") or {}
    found = (tracking.get("classes") or {}).get(name)
    return str(found["unique"]) if found and "unique" in found else "–"


def _class_rows(summary: dict[str, Any], colours: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, stats in summary["classes"].items():
        c, s = stats["count"], stats["size"]
        ci = f"{c['ci95'][0]:.3g} – {c['ci95'][1]:.3g} ({c.get('ci95_blocks', 0)} blocks)" if c["ci95"] else "–"
        iqr = f"{s['q25']:.3g} – {s['q75']:.3g}" if s["q25"] is not None else "–"
        rows.append({"colour": colours.get(str(name), EXCLUDED_COLOUR), "name": str(name),
                     "cells": (_unique(summary, str(name)), f"{_f(c['mean'])} ± {_f(c['sd'])}", ci,
                               _f(c["density_per_mm2"]), _f(s["median"]), iqr, str(s["objects"]))})
    return rows


def _plots(summary: dict[str, Any], colours: dict[str, str]) -> list[Markup]:
    """SVG charts; svg.py escapes every label it writes, so they go into the page as markup."""
    course = summary["time_course"]
    plots = [svg.line_chart("Objects per frame over time", course["t_s"], course["mean_count"], "time since start (s)",
                            "objects per analysed frame", colours)]
    plots.append(svg.line_chart("Excluded frames over time", course["t_s"], {"excluded": course["excluded"]},
                                "time since start (s)", "frames excluded", {"excluded": EXCLUDED_COLOUR}))
    for name, stats in summary["classes"].items():
        hist = stats["size"]["histogram"]
        if hist:
            plots.append(svg.histogram(f"Size of {name} (n = {stats['size']['objects']})", hist["edges"], hist["counts"],
                                       f"size, sqrt(width x height) ({summary['size_unit']})",
                                       colour=colours.get(str(name), svg.COLOURS[0])))
    return [Markup(p) for p in plots]  # svg.py escapes every text it writes


def quality_gates(quality: dict[str, Any]) -> str:
    """The frame-quality gates of the experiment as a sentence (device/experiments/quality.py)."""
    if not quality:
        return "not recorded"
    if quality.get("enabled") is False:
        return "off: every frame was analysed"
    q, parts = dict(quality), []
    q.pop("enabled", None)
    relative, window = q.pop("focus_relative_min", None), q.pop("focus_window", None)
    if relative:
        parts.append(f"out of focus below {100 * relative:.0f} % of the sharp reference (90th percentile of the last "
                     f"{window or '?'} frames)")
    if q.get("focus_min"):
        parts.append(f"out of focus below a focus score of {q.pop('focus_min'):g}")
    q.pop("focus_min", None)
    if (saturated := q.pop("saturated_max", None)) is not None:
        parts.append(f"badly exposed above {100 * saturated:g} % saturated pixels")
    if (dark := q.pop("dark_max", None)) is not None:
        parts.append(f"or above {100 * dark:g} % black pixels")
    parts += [f"{k.replace('_', ' ')} {v}" for k, v in sorted(q.items())]
    return "; ".join(parts) or "none"


def _metrics(metrics: dict[str, Any]) -> str:
    """The card's headline validation figures (numbers at its top level); the rest is in the bundle."""
    shown = [f"{k} {v:.3f}" for k, v in sorted(metrics.items()) if isinstance(v, float | int) and not isinstance(v, bool)]
    return ", ".join(shown) or "none in the model card"


def _calibration(experiment: Experiment, summary: dict[str, Any]) -> str:
    return calibration_text(experiment.calibration.model_dump() if experiment.calibration is not None else None, summary)


def calibration_text(profile: dict[str, Any] | None, summary: dict[str, Any]) -> str:
    """Which µm per pixel the sizes use and where it came from: the experiment's profile, the
    image files' own metadata (OME, ImageJ) or the device config."""
    if profile is not None:
        return f"experiment profile {profile['name']}: {profile['um_per_pixel']} µm/px ({profile['objective']} {profile['camera']})".strip()
    used = summary.get("calibrations") or []
    if used:
        shown = [f"{c['source'] or 'device default'}: {c['um_per_pixel']:.6g} µm/px" for c in used[:4]]
        more = f"; and {len(used) - 4} more" if len(used) > 4 else ""
        return "; ".join(shown) + more + " (no profile chosen)"
    scales = summary.get("um_per_pixel") or []
    if scales:
        return f"device default: {', '.join(str(s) for s in scales)} µm/px (no profile chosen)"
    return "none (sizes in px)"


def _info(experiment: Experiment) -> list[tuple[str, str]]:
    req, public = experiment.request, experiment.public()
    return [(k, _f(v)) for k, v in (
        ("Experiment", experiment.id), ("Name", req.name), ("Sample", req.sample), ("Operator", req.operator),
        ("Objective", req.objective), ("Notes", req.notes), ("Device", experiment.device), ("Project", experiment.project),
        ("Started (UTC)", public["started_iso"]), ("Stopped (UTC)", public["stopped_iso"] or "running"),
        ("Duration (s)", public["elapsed_s"]))]


def _provenance(experiment: Experiment, summary: dict[str, Any]) -> list[tuple[str, str]]:
    prov = experiment.provenance
    model = prov.get("model") or {}
    return [(k, _f(v)) for k, v in (
        ("Model", f"{model.get('name', 'none')} {model.get('version', '')}"), ("Model sha256", str(model.get("sha256", "–"))),
        ("Validation metrics", _metrics(model.get("metrics") or {})), ("Score threshold", model.get("score_threshold")),
        ("Quality gates (excluded frames)", quality_gates(prov.get("quality") or {})),
        ("Calibration", _calibration(experiment, summary)), ("Source", redact(str(prov.get("source", "–")))),
        ("Software", f"ScopeHive {prov.get('software', '?')}"))]


def _figures(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary table: unique objects first (what was there), then frames, then per-frame means."""
    frames = summary["frames"]
    excluded = ", ".join(f"{k} {v}" for k, v in frames["excluded_by_reason"].items()) or "none"
    tracking = summary.get("tracking") or {}
    unique = sum(int(c.get("unique", 0)) for c in (tracking.get("classes") or {}).values())
    camera, dropped = frames.get("camera", frames["total"]), frames.get("dropped", 0)
    share = f" ({100 * dropped / camera:.0f} %)" if camera else ""
    return [(k, _f(v)) for k, v in (
        ("Unique objects (tracked)", unique if tracking.get("classes") else "– (no tracks recorded)"),
        ("Camera frames", camera),
        ("Dropped camera frames", f"{dropped}{share}" + (": the device could not keep up with the camera and skipped them"
                                                           if dropped else "")),
        ("Frames recorded", frames["total"]), ("Frames analysed", frames["analysed"]),
        ("Frames excluded", f"{frames['excluded']} ({excluded})"),
        ("Calibration (sizes in µm)" if summary["size_unit"] == "µm" else "Calibration",
         calibration_text((summary.get("experiment") or {}).get("calibration"), summary)),
        ("Field of view (mm²)", summary["fov_mm2"]),
        ("All objects / frame", summary["total"]["mean"]), ("All objects / mm²", summary["total"]["density_per_mm2"]))]


def html_report(experiment: Experiment, summary: dict[str, Any], colours: dict[str, str] | None = None) -> str:
    """The whole report as one HTML document, rendered by the autoescaping template report.html:
    names, sample, operator, notes, device, project and source are text, never markup. `colours`:
    the project's class colours by name (the stream's); without, the shared default palette."""
    unit = summary["size_unit"]
    palette = colours_of(list(summary["classes"]), colours)
    return _TEMPLATES.get_template("report.html").render(
        name=experiment.request.name, generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        info=_info(experiment), figures=_figures(summary), class_head=[h.format(unit=unit) for h in CLASS_HEAD],
        class_rows=_class_rows(summary, palette), plots=_plots(summary, palette),
        blocks=max((c["count"].get("ci95_blocks", 0) for c in summary["classes"].values()), default=0),
        tracks=Markup(tracks_section(summary.get("tracking"))),  # tracks_section escapes its own text
        provenance=_provenance(experiment, summary), qc=summary.get("qc"), signed=_signed,
    ) + "\n"


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"
