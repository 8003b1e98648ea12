"""The human-readable evaluation: report.md here, report.png in trainer/report_figure.py.

A microscopist reads counts first, so the report gives, per class, the threshold the device uses
and how well the counts at that threshold agree with the labels (share of images counted
exactly, mean absolute error, Bland-Altman bias and 95 % limits of agreement), next to mAP.
"""

from __future__ import annotations

from typing import Any

from trainer.report_figure import render_png

__all__ = ["render_markdown", "render_png", "count_table"]


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


def count_table(metrics: dict[str, Any]) -> list[str]:
    """Markdown rows: per class AP, threshold and count agreement."""
    thresholds = metrics.get("class_thresholds") or {}
    lines = [
        "| class | AP@0.5 | AP@[.5:.95] | threshold | counted exactly | within 10 % | relative error (median, 90th pct) "
        "| count MAE | bias | 95 % limits of agreement |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for cls, ap in metrics["per_class"].items():
        c = metrics["count_error"]["per_class"][cls]
        limits = "n/a" if c.get("loa_low") is None else f"{c['loa_low']:+.2f} to {c['loa_high']:+.2f}"
        lines.append(
            f"| {cls} | {_fmt(ap['map50'])} | {_fmt(ap['map50_95'])} | {_fmt(thresholds.get(cls), '.2f')} | "
            f"{_pct(c.get('exact_share'))} | {_pct(c.get('within_10pct_share'))} | {_relative(c)} | "
            f"{_fmt(c['mae'], '.2f')} | {_fmt(c.get('bias'), '+.2f')} | {limits} |"
        )
    return lines


def _relative(c: dict[str, Any], prefix: str = "") -> str:
    median, p90 = c.get(f"{prefix}relative_error_median"), c.get(f"{prefix}relative_error_p90")
    if median is None or p90 is None:
        return "n/a"
    return f"{100 * median:.1f} %, {100 * p90:.1f} %"


def _weights(metrics: dict[str, Any]) -> str:
    training = metrics.get("training") or {}
    best = training.get("best_epoch") or 0
    if not training:
        return "the bundle's weights"
    if best:
        return (f"the weights of epoch {best} of {training.get('epochs_run')}, kept because they scored best on this same "
                "split (so the figures are optimistic; progress.json's `val` is the latest epoch's score, `final` this one)")
    return f"the weights after epoch {training.get('epochs_run')} (no validation during training)"


def render_markdown(name: str, version: str, metrics: dict[str, Any]) -> str:
    counts = metrics["count_error"]
    lines = [
        f"# {name} {version}: evaluation on the validation split",
        "",
        f"{metrics['val_images']} validation images, {metrics['val_objects']} objects; every figure below is of "
        f"{_weights(metrics)} on this validation split.",
        "",
        f"- mAP@0.5: **{_fmt(metrics['map50'])}**, mAP@[.5:.95]: **{_fmt(metrics['map50_95'])}** (COCO protocol)",
        f"- score thresholds per class: {metrics.get('thresholds_from', 'fitted on the validation split')}; "
        f"at them precision {_fmt(metrics['precision'])}, recall {_fmt(metrics['recall'])}, F1 {_fmt(metrics['f1'])}",
        f"- all classes together: counted exactly on {_pct(counts.get('total_exact_share'))} of images, "
        f"within 10 % of the truth on {_pct(counts.get('total_within_10pct_share'))}, relative count error median, 90th "
        f"percentile {_relative(counts, 'total_')}, count MAE {_fmt(counts['total_mae'], '.2f')} per image",
        "",
        *count_table(metrics),
        "",
        "Bias is the mean of (found - true) per image; 95 % of images fall within the limits of agreement. Relative "
        "error: |found - true| / true per image with objects (its median and 90th percentile: the spread); within 10 %: "
        "share of images whose count is within 10 % of the truth (an image without objects only when none were found).",
    ]
    parity = metrics.get("onnx_parity")
    if parity:
        lines += ["", f"ONNX vs Keras on {parity['frames']} validation frames: max abs difference {parity['max_abs_diff']:.2e}."]
    training = metrics.get("training")
    if training:
        lines += ["", f"Training: {training['epochs_run']} epochs in {training['seconds']:.0f} s, best at epoch {training['best_epoch']}"
                  + (" (stopped early by Ctrl-C)." if training.get("interrupted") else ".")]
        if training.get("time_cut"):
            where = "the GPU" if training.get("device") == "gpu" else "this machine's CPU"
            lines += ["", f"**The time limit cut this run** to {training['epochs_run']} of {training['epochs']} planned epochs on "
                      f"{where}: the model saw less training than planned. Raise the time limit (`--time-limit-min`) or train on "
                      "a GPU trainer, where the default plan's epochs fit in the limit."]
    lines += count_model_lines(metrics)
    lines += cross_validation_lines(metrics)
    lines += ["", "![precision-recall, count agreement and the frames with the largest count errors](report.png)", ""]
    return "\n".join(lines)


def count_model_lines(metrics: dict[str, Any]) -> list[str]:
    """Dense-frame count corrections (trainer/counts.py): per class what was adopted and why, and
    the corrected counts' agreement (the device's `count_estimate`) beside the box counts'."""
    fit = metrics.get("count_model_fit")
    estimate = metrics.get("count_estimate_error")
    if not fit and not estimate:
        return []
    lines = ["", "## Counts on dense frames", ""]
    for cls, m in (fit or {}).items():
        lines.append(f"- {cls}: {'**corrected**' if m.get('adopted') else 'boxes counted'}: {m.get('reason', '')}")
    if estimate:
        c = metrics["count_error"]
        lines += ["", f"With the corrections (`count_estimate` on the device): count MAE {_fmt(estimate['total_mae'], '.2f')} per "
                  f"image (boxes: {_fmt(c['total_mae'], '.2f')}), within 10 % on {_pct(estimate.get('total_within_10pct_share'))} "
                  f"(boxes: {_pct(c.get('total_within_10pct_share'))}), relative error median {_pct_1(estimate.get('total_relative_error_median'))} "
                  f"(boxes: {_pct_1(c.get('total_relative_error_median'))}). The corrections were chosen by leave-one-out on these "
                  "images; held-out frames (`trainer evaluate`) say how they carry over."]
    return lines


def _pct_1(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def cross_validation_lines(metrics: dict[str, Any]) -> list[str]:
    """The folds' figures beside the one split's (trainer/crossval.py), or why there are none."""
    cv = metrics.get("cross_validation")
    if not cv:
        return []
    if not cv.get("folds"):
        return ["", f"Cross-validation: {cv.get('note', 'not run')}."]
    lines = ["", f"## Cross-validation: {cv['folds']} folds of whole acquisitions", "",
             f"Each fold trained without one group of acquisitions and scored on it ({cv['note']}); the bundle is the one "
             f"model above. mAP@0.5 **{cv['map50_mean']:.3f} ± {cv['map50_sd']:.3f}** (mean over images ± spread of the "
             f"folds), mAP@[.5:.95] {cv['map50_95_mean']:.3f}, count MAE {cv['count_mae_mean']:.2f} per image; the one "
             f"validation split said {_fmt(metrics['map50'])}. Quote the cross-validated figure.", "",
             "| fold | images | objects | mAP@0.5 | mAP@[.5:.95] | count MAE | epochs |", "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['fold']} | {r['images']} | {r['objects']} | {r['map50']:.3f} | {r['map50_95']:.3f} | {r['count_mae']:.2f} "
              f"| {r['epochs_run']} |" for r in cv["per_fold"]]
    return lines
