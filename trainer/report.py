"""The human-readable evaluation: report.md plus report.png (PR curves and validation frames).

A microscopist should see at a glance how good the model is per class and where it errs, so the
figure shows precision-recall curves at IoU 0.5 next to a few validation frames with true boxes
(green) and predicted boxes above the chosen threshold (magenta).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from trainer.dataset import Sample
from trainer.metrics import Boxes, collect_matches

_FRAMES = 3


def _pr_curve(truth: list[Boxes], preds: list[Boxes], cls: int) -> tuple[np.ndarray, np.ndarray]:
    matches = collect_matches(truth, preds, cls, max_dets=100)
    if matches.n_truth == 0 or not len(matches.scores):
        return np.zeros(0), np.zeros(0)
    tps = np.cumsum(matches.matched[0])
    return tps / matches.n_truth, tps / np.arange(1, len(tps) + 1)


def render_png(samples: list[Sample], preds: list[Boxes], classes: list[str], threshold: float) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    truth = [Boxes.truth(s.boxes, s.classes) for s in samples]
    shown = min(_FRAMES, len(samples))
    fig, axes = plt.subplots(1, 1 + shown, figsize=(4.5 * (1 + shown), 4.2), squeeze=False)
    ax = axes[0, 0]
    for cls, name in enumerate(classes):
        recall, precision = _pr_curve(truth, preds, cls)
        if len(recall):
            ax.plot(recall, precision, label=name)
    ax.set(xlabel="recall", ylabel="precision", title="PR at IoU 0.5 (validation)", xlim=(0, 1.02), ylim=(0, 1.02))
    ax.legend(loc="lower left")
    for i in range(shown):
        ax = axes[0, 1 + i]
        ax.imshow(samples[i].image)
        for x1, y1, x2, y2 in samples[i].boxes:
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="lime", lw=1.2))
        keep = preds[i].scores >= threshold
        for x1, y1, x2, y2 in preds[i].xyxy[keep]:
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="magenta", lw=1.0, ls="--"))
        ax.set_title(f"{samples[i].file_name[:28]}: {len(samples[i].boxes)} true, {int(keep.sum())} found", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def render_markdown(name: str, version: str, metrics: dict[str, Any]) -> str:
    lines = [
        f"# {name} {version}: evaluation on the validation split",
        "",
        f"{metrics['val_images']} validation images, {metrics['val_objects']} objects.",
        "",
        f"- mAP@0.5: **{_fmt(metrics['map50'])}**, mAP@[.5:.95]: **{_fmt(metrics['map50_95'])}** (COCO protocol)",
        f"- at the F1-best score threshold {metrics['score_threshold']:.3f}: precision {_fmt(metrics['precision'])}, "
        f"recall {_fmt(metrics['recall'])}, F1 {_fmt(metrics['f1'])}",
        f"- count error per image (all classes): MAE {_fmt(metrics['count_error']['total_mae'])}",
        "",
        "| class | AP@0.5 | AP@[.5:.95] | count MAE | count mean relative error |",
        "| --- | --- | --- | --- | --- |",
    ]
    for cls, ap in metrics["per_class"].items():
        counts = metrics["count_error"]["per_class"][cls]
        lines.append(
            f"| {cls} | {_fmt(ap['map50'])} | {_fmt(ap['map50_95'])} | {_fmt(counts['mae'])} | "
            f"{_fmt(counts['mean_relative_error'])} |"
        )
    parity = metrics.get("onnx_parity")
    if parity:
        lines += ["", f"ONNX vs Keras on {parity['frames']} validation frames: max abs difference {parity['max_abs_diff']:.2e}."]
    training = metrics.get("training")
    if training:
        lines += ["", f"Training: {training['epochs_run']} epochs in {training['seconds']:.0f} s, best at epoch {training['best_epoch']}"
                  + (" (stopped early by Ctrl-C)." if training.get("interrupted") else ".")]
    lines += ["", "![precision-recall curves and validation frames](report.png)", ""]
    return "\n".join(lines)
