"""The tracks section of the experiment's HTML report (device/experiments/report.py)."""

from __future__ import annotations

from html import escape
from typing import Any


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else "–"


def tracks_section(tracking: dict[str, Any] | None) -> str:
    """Unique objects, speeds, share motile and crossings per class; empty without tracks."""
    if not tracking or not (tracking.get("classes") or tracking.get("crossings")):
        return ""
    head = ("class", "unique objects", "speed median", "speed IQR", "motile", "straightness", "crossed forward / reverse")
    rows = ["<table class='grid'><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    crossings = tracking.get("crossings", {})
    for name in dict.fromkeys([*tracking.get("classes", {}), *crossings]):
        c = tracking.get("classes", {}).get(name, {})
        unit = escape(c.get("speed_unit", ""))
        crossed = crossings.get(name)
        cells = (escape(name), str(c.get("unique", 0)), f"{_num(c.get('speed_median'))} {unit}",
                 f"{_num(c.get('speed_q25'))} – {_num(c.get('speed_q75'))} {unit}",
                 f"{_num(100 * c['motile_share'])} %" if "motile_share" in c else "–", _num(c.get("straightness_mean")),
                 f"{crossed['forward']} / {crossed['reverse']}" if crossed else "–")
        rows.append("<tr>" + "".join(f"<td>{v}</td>" for v in cells) + "</tr>")
    return ("<h2>Objects over time (tracks)</h2>" + "".join(rows) + "</table>"
            "<p class='muted'>Unique objects: tracks of at least tracking.min_frames frames that ended during the experiment. "
            "Speed: average path speed, stage drift subtracted. Crossings: the counting line drawn on the live view.</p>")
