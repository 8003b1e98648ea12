"""One metric point and its InfluxDB line-protocol encoding (written here: fast, no client objects).

Line protocol has no escape for a line break in a measurement, tag key or tag value: one there
ends the line, InfluxDB refuses the batch and reads the rest as a point of another measurement.
Names are refused where they enter (`name_problem`: bundle card, config, fleet reference); the
encoder still replaces any control character in a key or tag by U+FFFD, so no value that slipped
past can break a line.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import TypeAlias

FieldValue: TypeAlias = "int | float | str | bool"
_UNSAFE_IN_KEY = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def name_problem(text: str) -> str | None:
    """Why `text` cannot be a name that ends up in a tag, a CSV cell or a page (None: it can):
    control characters (a line break ends a line-protocol line), line separators and
    bidirectional overrides (make one name look like another)."""
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI_CONTROLS:
            return f"contains the control character U+{ord(ch):04X}: use printable characters only"
    return None


@functools.lru_cache(maxsize=4096)  # keys and tag values repeat: escaped once, not once per point
def _escape_key(text: str) -> str:
    if _UNSAFE_IN_KEY.search(text):
        text = _UNSAFE_IN_KEY.sub("\ufffd", text)
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _field(value: FieldValue) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Point:
    """measurement + tags + fields at a microsecond timestamp: same measurement, tags and time
    means the same point, so replaying it overwrites instead of duplicating."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    ts_us: int = field(default=0)

    def to_line(self) -> str:
        return encode_line(series_key(self.measurement, self.tags), self.fields, self.ts_us)


def series_key(measurement: str, tags: dict[str, str]) -> str:
    """`measurement,tag=value,...` (tags sorted, empty ones left out): the part shared by a series."""
    encoded = "".join(f",{_escape_key(k)}={_escape_key(v)}" for k, v in sorted(tags.items()) if v != "")
    return f"{_escape_key(measurement)}{encoded}"


def encode_line(key: str, fields: dict[str, FieldValue], ts_us: int) -> str:
    """One line of line protocol from a series key, the fields and a microsecond timestamp."""
    encoded = ",".join(f"{_escape_key(k)}={text}" for k, v in fields.items() if (text := _field(v)) is not None)
    if not encoded:
        raise ValueError(f"point '{key}' has no writable field")
    return f"{key} {encoded} {ts_us}"
