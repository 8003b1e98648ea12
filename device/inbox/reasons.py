"""Why a frame is worth a human look, decided from what the models made of it (pure functions).

Only analysed frames are judged: a frame no model looked at has no boxes to review. Each reason
comes with a sentence the panel shows beside the frame."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from device.analysis import Analysis
from device.inbox.settings import InboxSettings

NEAR, DISAGREE, FLICKER, DRIFT, SPOT = "near_threshold", "disagree", "flicker", "drift", "spot_check"
KINDS = (NEAR, DISAGREE, FLICKER, DRIFT, SPOT)


@dataclass(frozen=True)
class Reason:
    kind: str  # one of KINDS
    text: str  # in words, for the panel


def thresholds(analysis: Analysis) -> np.ndarray:
    """Each detection's class threshold (the card's per-class thresholds, else its default)."""
    assert analysis.detections is not None and analysis.card is not None
    card = analysis.card
    per_class = card.class_thresholds or {}
    table = np.array([per_class.get(name, card.score_threshold) for name in card.classes], float)
    ids = np.clip(analysis.detections.class_ids, 0, len(table) - 1)
    return table[ids] if len(table) else np.zeros(len(ids))


def near_threshold(analysis: Analysis, settings: InboxSettings) -> Reason | None:
    """Many of the frame's detections only just above the model's threshold."""
    detections = analysis.detections
    if detections is None or analysis.card is None or len(detections) == 0:
        return None
    near = int(np.count_nonzero(detections.scores < thresholds(analysis) + settings.near_band))
    if near < settings.near_min or near < settings.near_share * len(detections):
        return None
    return Reason(NEAR, f"{near} of {len(detections)} detections of {analysis.pipeline} scored within "
                        f"{settings.near_band:g} of the threshold")


def disagreement(analyses: Sequence[Analysis], settings: InboxSettings) -> Reason | None:
    """The main model and one beside it count this frame differently beyond the margin."""
    looked = [a for a in analyses if a.detections is not None]
    if len(looked) < 2:
        return None
    main, main_n = looked[0], len(looked[0].detections or ())
    for other in looked[1:]:
        n = len(other.detections or ())
        gap = abs(main_n - n)
        if gap > settings.disagree_margin and gap > settings.disagree_share * max(main_n, n):
            return Reason(DISAGREE, f"{main.pipeline} counted {main_n}, {other.pipeline} counted {n}")
    return None


def flicker(analysis: Analysis, settings: InboxSettings) -> Reason | None:
    """Many of the frame's tracks were lost for a frame or more and found again: the model sees
    these objects on some frames and not on others (tracking on; the stage's TrackOverlay says)."""
    tracks = analysis.extra.get("tracking")
    back = int(getattr(tracks, "reappeared", 0))
    n = len(analysis.detections or ())
    if back < settings.flicker_min or back < settings.flicker_share * n:
        return None
    return Reason(FLICKER, f"{back} of {n} objects of {analysis.pipeline} came back after being missed "
                           f"(detections that flicker)")


def frame_reasons(analyses: Sequence[Analysis], settings: InboxSettings, drifting: str, draw: float) -> list[Reason]:
    """Every reason to keep this frame. `drifting`: the drift alarm's message ('' = no alarm);
    `draw`: a uniform number in [0, 1) for the spot check."""
    if not analyses or analyses[0].detections is None:
        return []  # the main model did not look: nothing to review
    found = [r for r in (near_threshold(analyses[0], settings), disagreement(analyses, settings),
                         flicker(analyses[0], settings)) if r is not None]
    if drifting:
        found.append(Reason(DRIFT, f"during a drift alarm: {drifting}"))
    if draw < settings.spot_share:
        found.append(Reason(SPOT, "spot check (a random share of analysed frames)"))
    return found
