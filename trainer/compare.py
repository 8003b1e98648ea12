"""A new model against the running one, on the same held-out frames: better, worse or same per class.

Both are scored by `score_bundle` at their own thresholds (what each would count on the device).
A class is better or worse when its AP@0.5 moves by more than `AP_MARGIN`; within that margin,
when its count error per image moves by more than `MAE_MARGIN` objects. Smaller moves are
`same`: a held-out set of a few dozen frames cannot tell them from noise, and a verdict that
flips on noise would train people to ignore it.
"""

from __future__ import annotations

from typing import Any

AP_MARGIN = 0.02
MAE_MARGIN = 0.1  # objects per image


def class_figures(scores: dict[str, Any], name: str) -> dict[str, float | None]:
    ap = (scores.get("per_class") or {}).get(name) or {}
    counts = ((scores.get("count_error") or {}).get("per_class") or {}).get(name) or {}
    return {"ap50": ap.get("map50"), "ap50_95": ap.get("map50_95"), "count_mae": counts.get("mae"),
            "exact_share": counts.get("exact_share"), "bias": counts.get("bias")}


def class_verdict(new: dict[str, float | None], old: dict[str, float | None]) -> str:
    """'better', 'worse' or 'same' for one class (AP first, then count error)."""
    if new["ap50"] is not None and old["ap50"] is not None:
        delta = new["ap50"] - old["ap50"]
        if abs(delta) > AP_MARGIN:
            return "better" if delta > 0 else "worse"
    if new["count_mae"] is not None and old["count_mae"] is not None:
        delta = new["count_mae"] - old["count_mae"]
        if abs(delta) > MAE_MARGIN:
            return "better" if delta < 0 else "worse"
    return "same"


def compare(new: dict[str, Any], old: dict[str, Any], classes: list[str]) -> dict[str, Any]:
    """Per-class figures side by side, each class's verdict, and the overall one.

    Overall: `worse` when any class is worse (the classes are named: deploying then needs a
    confirmation that names them), `better` when some class is better and none worse, else `same`.
    """
    per_class = {}
    for name in classes:
        a, b = class_figures(new, name), class_figures(old, name)
        per_class[name] = {"new": a, "running": b, "verdict": class_verdict(a, b)}
    worse = [n for n, c in per_class.items() if c["verdict"] == "worse"]
    better = [n for n, c in per_class.items() if c["verdict"] == "better"]
    verdict = "worse" if worse else "better" if better else "same"
    return {"per_class": per_class, "verdict": verdict, "worse_classes": worse, "better_classes": better,
            "new": {"map50": new.get("map50"), "count_mae": (new.get("count_error") or {}).get("total_mae")},
            "running": {"map50": old.get("map50"), "count_mae": (old.get("count_error") or {}).get("total_mae")}}


def describe(comparison: dict[str, Any]) -> str:
    """One line for logs, annotations and the job's message."""
    if comparison["verdict"] == "worse":
        return f"worse than the running model on {', '.join(comparison['worse_classes'])}"
    if comparison["verdict"] == "better":
        return f"better than the running model on {', '.join(comparison['better_classes'])}, worse on none"
    return "the same as the running model on every class (within the margins)"
