"""The summary of one experiment, computed from the device's own record (no InfluxDB needed).

Every figure is defined so that the same InfluxQL over the same points gives the same number
(docs/metrics.md lists the queries): a count per frame is the mean over *analysed* frames only
(excluded frames have no count, so `mean("count")` skips them too), a size is the median of the
per-object `size_um` (the box's geometric-mean side, sqrt(width x height)), a median of an even
number of values is the mean of the middle two (numpy's and InfluxQL's rule), the quartiles are
InfluxQL's nearest-rank `percentile()`, and sd is the sample standard deviation (`stddev()`).
The 95 % interval of a count is the exception: it is over blocks of consecutive frames (see
`count_stats`), since frames of one field are not independent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from device.experiments.store import Experiment

# Two-sided 95 % Student t quantiles for 1..30 degrees of freedom; 1.96 beyond.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
HISTOGRAM_BINS = 20
TIME_BINS = 40
BLOCKS = 10  # the count's 95 % interval is over up to this many blocks of consecutive frames
MIN_BLOCK_FRAMES = 5


def t95(n: int) -> float:
    """Two-sided 95 % t quantile for n samples (n - 1 degrees of freedom)."""
    df = n - 1
    return _T95[df - 1] if 1 <= df <= len(_T95) else 1.96


def block_count(n: int) -> int:
    """How many blocks of consecutive frames the interval is taken over: at most BLOCKS, at least
    MIN_BLOCK_FRAMES frames each, and never fewer than two (one block has no spread)."""
    return max(2, min(BLOCKS, n // MIN_BLOCK_FRAMES)) if n >= 2 else 0


def count_stats(values: list[int], fov_mm2: float | None) -> dict[str, Any]:
    """mean, sample sd, 95 % CI of the mean, and density per mm² of per-frame counts (in frame order).

    Consecutive frames of one field show the same objects, so they are not independent samples and
    mean ± t·sd/√n over frames would be far too narrow. The interval is over block means instead
    (the batch-means method): the frames are cut into `block_count(n)` runs of consecutive frames,
    and the interval is mean ± t·sd(block means)/√blocks. It says how steady the count was over
    the experiment; it cannot say how the fields seen stand for the whole sample (only more fields can)."""
    n = len(values)
    if not n:
        return {"frames": 0, "mean": None, "sd": None, "ci95": None, "ci95_blocks": 0, "density_per_mm2": None}
    arr = np.asarray(values, float)
    mean = float(arr.mean())
    sd = float(arr.std(ddof=1)) if n > 1 else 0.0
    blocks = block_count(n)
    ci: list[float] | None = None
    if blocks:
        means = np.array([b.mean() for b in np.array_split(arr, blocks)])
        half = t95(blocks) * float(means.std(ddof=1)) / math.sqrt(blocks)
        ci = [mean - half, mean + half]
    return {"frames": n, "mean": mean, "sd": sd, "ci95": ci, "ci95_blocks": blocks,
            "density_per_mm2": mean / fov_mm2 if fov_mm2 else None}


def dropped_frames(frames: list[dict[str, Any]]) -> dict[str, int]:
    """Camera frames the device never processed (the loop could not keep up and the capture kept
    only the newest): gaps in the capture's frame index between recorded frames. A restart resets
    the index; that step down is no gap."""
    indices = [f["frame_index"] for f in frames if f.get("frame_index") is not None]
    gaps = sum(max(0, b - a - 1) for a, b in zip(indices, indices[1:], strict=False))
    return {"camera": len(frames) + gaps, "dropped": gaps}


def nearest_rank(ordered: np.ndarray, percent: float) -> float:
    """InfluxQL's `percentile(field, N)`: the value at rank floor(n * N / 100 + 0.5), 1-based, clamped."""
    i = int(math.floor(len(ordered) * percent / 100.0 + 0.5)) - 1
    return float(ordered[min(max(i, 0), len(ordered) - 1)])


def size_stats(sizes: list[float], unit: str) -> dict[str, Any]:
    """median, IQR (nearest-rank quartiles) and a histogram of object sizes."""
    if not sizes:
        return {"objects": 0, "unit": unit, "median": None, "q25": None, "q75": None, "histogram": None}
    arr = np.sort(np.asarray(sizes, float))
    q25, median, q75 = nearest_rank(arr, 25), float(np.median(arr)), nearest_rank(arr, 75)
    counts, edges = np.histogram(arr, bins=HISTOGRAM_BINS)
    return {"objects": len(sizes), "unit": unit, "median": median, "q25": q25, "q75": q75,
            "histogram": {"edges": [round(float(e), 4) for e in edges], "counts": counts.tolist()}}


def _time_course(frames: list[dict[str, Any]], classes: list[str], start: float, end: float) -> dict[str, Any]:
    """Mean count per analysed frame in TIME_BINS equal slices, and excluded frames per slice."""
    span = max(end - start, 1e-6)
    width = span / TIME_BINS
    sums = np.zeros((TIME_BINS, len(classes)))
    analysed = np.zeros(TIME_BINS)
    excluded = np.zeros(TIME_BINS)
    for frame in frames:
        i = min(TIME_BINS - 1, max(0, int((frame["ts_us"] / 1e6 - start) / width)))
        if frame["counts"] is None:
            excluded[i] += 1
            continue
        analysed[i] += 1
        sums[i] += [frame["counts"].get(c, 0) for c in classes]
    means = np.divide(sums, analysed[:, None], out=np.full_like(sums, np.nan), where=analysed[:, None] > 0)
    return {"t_s": [round((i + 0.5) * width, 3) for i in range(TIME_BINS)],
            "mean_count": {c: [None if math.isnan(v) else round(float(v), 4) for v in means[:, k]] for k, c in enumerate(classes)},
            "excluded": excluded.astype(int).tolist()}


def summarise(experiment: Experiment, frames: list[dict[str, Any]], objects: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Frames analysed/excluded, per-class counts and densities, size distributions, time course."""
    analysed = [f for f in frames if f["analysed"] == "ok" and f["counts"] is not None]
    excluded: dict[str, int] = {}
    for f in frames:
        if f["analysed"] != "ok":
            excluded[f["analysed"]] = excluded.get(f["analysed"], 0) + 1
    classes = list(dict.fromkeys(c for f in analysed for c in f["counts"]))
    fovs = [f["fov_mm2"] for f in analysed if f["fov_mm2"]]
    fov = float(np.mean(fovs)) if fovs else None
    scales = sorted({f["um_per_pixel"] for f in frames if f["um_per_pixel"]})
    calibrations = sorted({(f.get("calibration") or "", f["um_per_pixel"]) for f in frames if f["um_per_pixel"]})
    # µm when every analysed frame was calibrated (a profile, or the device's default um_per_pixel)
    calibrated = bool(analysed) and all(f["um_per_pixel"] for f in analysed)
    sizes: dict[str, list[float]] = {c: [] for c in classes}
    for obj in objects:
        if calibrated and obj["width_um"] is not None:
            size = math.sqrt(obj["width_um"] * obj["height_um"])
        else:
            size = math.sqrt((obj["x2"] - obj["x1"]) * (obj["y2"] - obj["y1"]))
        sizes.setdefault(obj["class"], []).append(size)
    unit = "µm" if calibrated else "px"
    start, end = experiment.started, experiment.stopped or (frames[-1]["ts_us"] / 1e6 if frames else experiment.started)
    first, last = (frames[0]["ts_us"] / 1e6, frames[-1]["ts_us"] / 1e6) if frames else (start, end)
    if first < start - 60 or last > end + 60:  # frames at the files' own acquisition times, not the device's
        start, end = first, last
    per_class = {c: {"count": count_stats([f["counts"].get(c, 0) for f in analysed], fov),
                     "size": size_stats(sizes.get(c, []), unit)} for c in classes}
    camera = dropped_frames(frames)
    return {"experiment": experiment.public(), "frames": {"total": len(frames), "analysed": len(analysed),
            "excluded": sum(excluded.values()), "excluded_by_reason": excluded,
            "camera": camera["camera"], "dropped": camera["dropped"]},
            "fov_mm2": fov, "size_unit": unit, "um_per_pixel": scales,
            "calibrations": [{"source": source, "um_per_pixel": um} for source, um in calibrations], "classes": per_class,
            "total": count_stats([sum(f["counts"].values()) for f in analysed], fov),
            "time_course": _time_course(frames, classes, start, end)}
