"""Count QC from spot checks: the agreement figures equal a hand computation (a table test)."""

from __future__ import annotations

import math

import pytest

from device.inbox.qc import (
    ALL,
    NOT_CHECKED,
    SpotPair,
    agreement_of,
    agreements,
    qc_points,
    status_of,
)

# Four spot-checked frames, two classes: (frame, class, model count, person count).
SPOTS = [("f1", "cell", 10, 9), ("f2", "cell", 12, 12), ("f3", "cell", 8, 10), ("f4", "cell", 11, 10),
         ("f1", "crystal", 3, 3), ("f2", "crystal", 0, 1), ("f3", "crystal", 2, 2), ("f4", "crystal", 4, 4)]
PAIRS = [SpotPair("cells:3", cls, m, h, frame) for frame, cls, m, h in SPOTS]

# By hand. cell: d = 1, 0, -2, 1 -> mean 0, SD sqrt(6/3) = sqrt 2, exact 1 of 4.
# crystal: d = 0, -1, 0, 0 -> mean -0.25, SD sqrt((3 * 0.0625 + 0.5625) / 3) = 0.5, exact 3 of 4.
# all classes (per-frame totals 13/12, 12/13, 10/12, 15/14): d = 1, -1, -2, 1 -> mean -0.25,
#   SD sqrt((1.5625 + 0.5625 + 3.0625 + 1.5625) / 3) = 1.5, exact 0 of 4.
HAND = {
    "cell": (4, 10.25, 10.25, 0.0, math.sqrt(2), 0.25),
    "crystal": (4, 2.25, 2.5, -0.25, 0.5, 0.75),
    ALL: (4, 12.5, 12.75, -0.25, 1.5, 0.0),
}


def test_agreement_equals_the_hand_computation() -> None:
    rows = agreements(PAIRS)["cells:3"]
    assert [r.cls for r in rows] == ["cell", "crystal", ALL]
    for row in rows:
        n, mean_model, mean_human, bias, sd, exact = HAND[row.cls]
        assert row.frames == n and row.share_exact == exact
        assert row.mean_model == pytest.approx(mean_model) and row.mean_human == pytest.approx(mean_human)
        assert row.mean_diff == pytest.approx(bias) and row.sd_diff == pytest.approx(sd)
        assert row.loa_low == pytest.approx(bias - 1.96 * sd) and row.loa_high == pytest.approx(bias + 1.96 * sd)


def test_one_spot_check_has_no_limits_and_none_says_not_checked() -> None:
    one = agreement_of("cells:3", "cell", [(5, 5)])
    assert (one.frames, one.sd_diff, one.loa_low, one.loa_high, one.share_exact) == (1, None, None, None, 1.0)
    table = agreements(PAIRS[:1])
    assert status_of("cells:4", table) == NOT_CHECKED  # another version: its own spot checks, none yet
    assert status_of("cells:3", table).startswith("1 spot check: counted exactly on 0 %")
    assert agreements([]) == {}
    with pytest.raises(ValueError, match="at least one"):
        agreement_of("cells:3", "cell", [])


def test_versions_are_kept_apart() -> None:
    table = agreements(PAIRS + [SpotPair("cells:4", "cell", 9, 9, "f1")])
    assert set(table) == {"cells:3", "cells:4"}
    assert [(r.cls, r.frames, r.share_exact) for r in table["cells:4"]] == [("cell", 1, 1.0)]  # one class: no ALL row


def test_points_carry_the_figures_per_class() -> None:
    rows = agreements(PAIRS)["cells:3"]
    points = qc_points("cells", "3", rows, {"device": "scope-1", "project": "p"}, 1_000)
    assert [(p.measurement, p.tags["class"], p.tags["model"], p.tags["model_version"]) for p in points] == [
        ("count_qc", "cell", "cells", "3"), ("count_qc", "crystal", "cells", "3"), ("count_qc", ALL, "cells", "3")]
    cell = points[0].fields
    assert cell["spot_checks"] == 4 and cell["share_exact"] == 0.25 and cell["loa_high"] == pytest.approx(1.96 * math.sqrt(2))
    single = qc_points("cells", "4", agreements(PAIRS[:1])["cells:3"], {}, 1_000)[0].fields
    assert "loa_low" not in single and single["mean_diff"] == 1.0  # no limits from one frame, never a made-up 0
