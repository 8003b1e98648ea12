"""Train/validation split that keeps near-copies of a frame on the same side.

Why: with few frames, validation frames cut from the same acquisitions as training frames
(neighbouring captures of one field, a few seconds apart) are near-copies of them, and the score
flatters the model (45 phase-contrast frames: validation 0.81, held-out 0.54). So frames are
first grouped, and whole groups go to one side:
- captures (the manifest's acquisition entry) of one device and source taken within
  `SESSION_GAP_S` of the previous one, or consecutive frame numbers, form one acquisition;
- any two frames whose high-passed 32x32 thumbnails correlate above `NEAR_COPY` are joined too
  (uploads and imports carry no metadata; a field captured twice looks like itself).
With a single group, validation is the last contiguous run of frames (in capture or file order),
so only one boundary touches training, and the plan says validation is not independent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import cv2
import numpy as np

SESSION_GAP_S = 120.0
NEAR_COPY = 0.85  # correlation of high-passed thumbnails: a field seen again, not a similar field
_THUMB = 32
_MAX_COMPARED = 4000  # frames whose thumbnails are compared pairwise (a 4000x4000 matrix)


@dataclass
class Split:
    train: list[Any]
    val: list[Any]
    groups: int  # independent groups the frames fell into
    val_groups: int
    notes: list[str] = field(default_factory=list)  # warnings for the plan
    closest: float | None = None  # highest thumbnail correlation of a validation frame with a training frame


def _time(acq: dict[str, Any]) -> float | None:
    value = acq.get("captured_at")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


class _Union:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def thumbnails(images: list[np.ndarray]) -> np.ndarray:
    """[N, 32*32] zero-mean, unit-norm high-passed grey thumbnails (uneven illumination removed)."""
    rows = []
    for image in images:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        small = cv2.resize(grey, (_THUMB * 2, _THUMB * 2), interpolation=cv2.INTER_AREA).astype(np.float32)
        high = small - cv2.GaussianBlur(small, (0, 0), 6.0)
        vec = cv2.resize(high, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA).ravel()
        vec -= vec.mean()
        rows.append(vec / max(float(np.linalg.norm(vec)), 1e-6))
    return np.stack(rows) if rows else np.zeros((0, _THUMB * _THUMB), np.float32)


def _join_acquisitions(samples: list[Any], union: _Union) -> None:
    by_source: dict[tuple[str, str], list[tuple[float, int, int]]] = {}
    for i, s in enumerate(samples):
        acq = s.acquisition or {}
        t, index = _time(acq), acq.get("frame_index")
        if t is None and not isinstance(index, int):
            continue
        key = (str(acq.get("device", "")), str(acq.get("source", "")))
        by_source.setdefault(key, []).append((t if t is not None else float("nan"), int(index) if isinstance(index, int) else -10, i))
    for frames in by_source.values():
        frames.sort(key=lambda f: (np.nan_to_num(f[0], nan=0.0), f[1]))
        for (t0, n0, a), (t1, n1, b) in zip(frames, frames[1:], strict=False):
            close = not np.isnan(t0) and not np.isnan(t1) and t1 - t0 <= SESSION_GAP_S
            if close or (n0 >= 0 and n1 == n0 + 1):
                union.join(a, b)


def _join_near_copies(thumbs: np.ndarray, union: _Union) -> np.ndarray:
    similar = thumbs @ thumbs.T
    np.fill_diagonal(similar, -1.0)
    for a, b in zip(*np.nonzero(np.triu(similar > NEAR_COPY)), strict=True):
        union.join(int(a), int(b))
    return similar


def _order_key(sample: Any, i: int) -> tuple[float, str, int]:
    t = _time(sample.acquisition or {})
    return (t if t is not None else 0.0, sample.file_name, i)


def sample_groups(samples: list[Any]) -> tuple[list[list[int]], np.ndarray | None]:
    """Indices of `samples` in independent groups (acquisitions, near-copies joined), and the
    thumbnail correlation matrix (None for packages too large to compare pairwise)."""
    n = len(samples)
    union = _Union(n)
    _join_acquisitions(samples, union)
    similar = _join_near_copies(thumbnails([s.image for s in samples]), union) if n <= _MAX_COMPARED else None
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(union.find(i), []).append(i)
    return list(groups.values()), similar


def group_folds(samples: list[Any], k: int, seed: int) -> list[list[int]]:
    """`k` folds of whole groups (near-copies never straddle two folds), as even in images as the
    groups allow: seeded order, largest group first into the smallest fold. Fewer than `k`
    groups: []."""
    members, _ = sample_groups(samples)
    if len(members) < k or k < 2:
        return []
    order = np.random.default_rng(seed).permutation(len(members))
    folds: list[list[int]] = [[] for _ in range(k)]
    for g in sorted(order, key=lambda g: -len(members[g])):
        min(folds, key=len).extend(members[g])
    return [sorted(f) for f in folds]


def group_split(samples: list[Any], val_fraction: float, seed: int) -> Split:
    """Whole groups to validation, stratified by each group's dominant class, seeded."""
    n = len(samples)
    if n < 2 or val_fraction <= 0:
        return Split(list(samples), [], n, 0)
    members, similar = sample_groups(samples)
    target = max(1, int(round(n * val_fraction)))
    notes: list[str] = []
    if len(members) == 1:
        order = sorted(range(n), key=lambda i: _order_key(samples[i], i))
        val_idx = set(order[-target:])
        notes.append(f"all {n} images are one acquisition or near-copies of each other: validation is its last {target} "
                     "frames, not independent of training, and will flatter the model; add images from another "
                     "acquisition or field, or give a held-out package")
    else:
        val_idx = _pick_groups(samples, members, target, seed)
    train = [s for i, s in enumerate(samples) if i not in val_idx]
    val = [samples[i] for i in sorted(val_idx)]
    val_groups = sum(1 for g in members if val_idx.issuperset(g))
    split = Split(train, val, len(members), val_groups, notes)
    if similar is not None and train and val:
        rest = [i for i in range(n) if i not in val_idx]
        split.closest = round(float(similar[np.ix_(sorted(val_idx), rest)].max()), 3)
    return split


def _pick_groups(samples: list[Any], members: list[list[int]], target: int, seed: int) -> set[int]:
    """Groups in a seeded order, per stratum (dominant class), until each stratum's share is held out."""
    rng = np.random.default_rng(seed)
    strata: dict[int, list[list[int]]] = {}
    for group in members:
        classes = np.concatenate([samples[i].classes for i in group]).astype(int)
        key = int(np.bincount(classes).argmax()) if len(classes) else -1
        strata.setdefault(key, []).append(group)
    total = sum(len(g) for g in members)
    chosen: set[int] = set()
    for key in sorted(strata):
        groups = strata[key]
        rng.shuffle(groups)  # type: ignore[arg-type]
        want = target * sum(len(g) for g in groups) / total
        taken = 0
        for group in groups:
            if len(groups) < 2 or taken >= want - 1e-9:
                break
            if taken and taken + len(group) > 1.5 * want:
                continue
            chosen.update(group)
            taken += len(group)
    if not chosen:
        smallest = min(members, key=len)
        chosen.update(smallest)
    if len(chosen) == total:  # never hold everything out
        biggest: list[int] = max(members, key=len)
        chosen.difference_update(biggest)
    return chosen
