"""The characters no name or one-line text typed into the device may hold, in one place.

Shared by the panel's project and class names (device/panel/names.py) and the experiment's name,
sample, operator and notes (device/experiments/calibration.py): control characters break exports
and logs, lone surrogates cannot be written as UTF-8, and bidirectional overrides (U+202E...)
make a text display as something it is not ("report‮fdp.exe").
"""

from __future__ import annotations

import unicodedata

REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def bidi_control(text: str) -> str | None:
    """The first bidirectional control character in `text`, or None."""
    return next((ch for ch in text if ch in BIDI_CONTROLS), None)


def unprintable(text: str) -> str | None:
    """The first control, separator, surrogate or bidirectional control character, or None."""
    return next((ch for ch in text if unicodedata.category(ch) in REFUSED_CATEGORIES or ch in BIDI_CONTROLS), None)
