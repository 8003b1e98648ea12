"""report.png: how good the model is per class, how well it counts, and where it errs.

Top row: precision-recall at IoU 0.5, found-vs-true counts per image, and the Bland-Altman plot
(difference against mean) per class. Bottom row: the validation frames with the largest count
errors, each class in its own colour (labels solid, detections dashed), so a white cell found as
a red cell is visible at a glance, with per-class counts in the title.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from device.colours import default_colour
from trainer.counts import class_counts, count_pairs, keep_above, threshold_vector
from trainer.dataset import Sample
from trainer.metrics import Boxes, collect_matches

WORST_FRAMES = 3


def class_colour(cls: int) -> str:
    """The colour a project gives class `cls` by default: the same as on the stream and in the panel."""
    return default_colour(cls)


def _pr_curve(truth: list[Boxes], preds: list[Boxes], cls: int) -> tuple[np.ndarray, np.ndarray]:
    matches = collect_matches(truth, preds, cls, max_dets=100_000)
    if matches.n_truth == 0 or not len(matches.scores):
        return np.zeros(0), np.zeros(0)
    tps = np.cumsum(matches.matched[0])
    return tps / matches.n_truth, tps / np.arange(1, len(tps) + 1)


def worst_frames(truth: list[Boxes], kept: list[Boxes], n_classes: int, count: int = WORST_FRAMES) -> list[int]:
    """Indices of the frames whose per-class counts are furthest off (sum of absolute errors)."""
    if not truth:
        return []
    error = sum(np.abs(class_counts(kept, c, 0.0) - class_counts(truth, c)) for c in range(n_classes))
    return [int(i) for i in np.argsort(-np.asarray(error), kind="stable")[:count]]


def _plot_pr(ax: Any, truth: list[Boxes], preds: list[Boxes], classes: list[str]) -> None:
    for cls, name in enumerate(classes):
        recall, precision = _pr_curve(truth, preds, cls)
        if len(recall):
            ax.plot(recall, precision, label=name, color=class_colour(cls))
    ax.set(xlabel="recall", ylabel="precision", title="PR at IoU 0.5 (validation)", xlim=(0, 1.02), ylim=(0, 1.02))
    ax.legend(loc="lower left", fontsize=8)


def _plot_counts(ax_scatter: Any, ax_ba: Any, truth: list[Boxes], kept: list[Boxes], classes: list[str]) -> None:
    top = 1
    for cls, name in enumerate(classes):
        true, found = count_pairs(truth, kept, cls)
        if not true.any() and not found.any():
            continue
        jitter = (cls - len(classes) / 2) * 0.06  # classes with equal counts stay visible
        colour = class_colour(cls)
        ax_scatter.scatter(true + jitter, found + jitter, s=14, alpha=0.6, color=colour, label=name)
        diff, mean = found - true, (found + true) / 2
        bias, spread = float(diff.mean()), float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
        ax_ba.scatter(mean + jitter, diff + jitter, s=14, alpha=0.6, color=colour, label=f"{name}: bias {bias:+.2f}")
        for level, style in ((bias, "-"), (bias - 1.96 * spread, ":"), (bias + 1.96 * spread, ":")):
            ax_ba.axhline(level, color=colour, ls=style, lw=0.9)
        top = max(top, int(true.max(initial=0)), int(found.max(initial=0)))
    ax_scatter.plot([0, top], [0, top], color="grey", lw=0.8)
    ax_scatter.set(xlabel="true count per image", ylabel="found count per image", title="counts per image (validation)")
    ax_ba.axhline(0, color="grey", lw=0.8)
    ax_ba.set(xlabel="mean of found and true", ylabel="found - true", title="Bland-Altman: bias (line), 95 % limits (dotted)")
    for ax in (ax_scatter, ax_ba):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=7)


def _plot_frame(ax: Any, sample: Sample, kept: Boxes, classes: list[str]) -> None:
    from matplotlib.patches import Rectangle

    ax.imshow(sample.image)
    for (x1, y1, x2, y2), cls in zip(sample.boxes, sample.classes, strict=True):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=class_colour(int(cls)), lw=1.3))
    for (x1, y1, x2, y2), cls in zip(kept.xyxy, kept.classes, strict=True):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=class_colour(int(cls)), lw=1.0, ls="--"))
    parts = [f"{name} {int((sample.classes == c).sum())}/{int((kept.classes == c).sum())}" for c, name in enumerate(classes)]
    ax.set_title(f"{sample.file_name[:32]}\ntrue/found: " + ", ".join(parts), fontsize=7)
    ax.axis("off")


def render_png(samples: list[Sample], preds: list[Boxes], classes: list[str], class_thresholds: Mapping[str, float]) -> bytes:
    """The figure as PNG bytes; detections are kept at each class's own threshold, as on the device."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth = [Boxes.truth(s.boxes, s.classes) for s in samples]
    kept = keep_above(preds, threshold_vector(classes, class_thresholds, 0.5))
    worst = worst_frames(truth, kept, len(classes))
    fig, axes = plt.subplots(2, 3, figsize=(15, 9.5), squeeze=False)
    _plot_pr(axes[0, 0], truth, preds, classes)
    _plot_counts(axes[0, 1], axes[0, 2], truth, kept, classes)
    for slot in range(3):
        ax = axes[1, slot]
        if slot < len(worst):
            _plot_frame(ax, samples[worst[slot]], kept[worst[slot]], classes)
        else:
            ax.axis("off")
    fig.suptitle("labels solid, detections dashed; one colour per class; bottom: largest count errors", fontsize=9)
    return _png(fig)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)
    plt.close(fig)
    return buffer.getvalue()


def worst_summary(samples: list[Sample], kept: list[Boxes], classes: list[str], count: int = 4) -> list[dict[str, Any]]:
    """The frames whose counts are furthest off, each with its true and found counts per class."""
    truth = [Boxes.truth(s.boxes, s.classes) for s in samples]
    out = []
    for i in worst_frames(truth, kept, len(classes), count):
        true = {name: int((samples[i].classes == c).sum()) for c, name in enumerate(classes)}
        found = {name: int((kept[i].classes == c).sum()) for c, name in enumerate(classes)}
        error = sum(abs(found[n] - true[n]) for n in classes)
        if error:
            out.append({"file": samples[i].file_name, "index": i, "true": true, "found": found, "count_error": error})
    return out


def render_worst_png(samples: list[Sample], kept: list[Boxes], classes: list[str], worst: list[dict[str, Any]]) -> bytes | None:
    """The worst frames side by side, labels solid and the model's detections dashed (None: no frame erred)."""
    if not worst:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(worst), figsize=(4.2 * len(worst), 4.6), squeeze=False)
    for ax, frame in zip(axes[0], worst, strict=True):
        _plot_frame(ax, samples[frame["index"]], kept[frame["index"]], classes)
    fig.suptitle("held-out frames the new model counted worst: labels solid, its detections dashed", fontsize=9)
    return _png(fig)

