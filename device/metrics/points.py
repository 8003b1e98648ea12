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
        tags = "".join(f",{_escape_key(k)}={_escape_key(v)}" for k, v in sorted(self.tags.items()) if v != "")
        encoded = [(k, _field(v)) for k, v in self.fields.items()]
        fields = ",".join(f"{_escape_key(k)}={v}" for k, v in encoded if v is not None)
        if not fields:
            raise ValueError(f"point '{self.measurement}' has no writable field")
        return f"{_escape_key(self.measurement)}{tags} {fields} {self.ts_us}"
