"""One metric point and its InfluxDB line-protocol encoding (written here: fast, no client objects)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TypeAlias

FieldValue: TypeAlias = "int | float | str | bool"


def _escape_key(text: str) -> str:
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
