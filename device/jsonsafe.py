"""Standard JSON in and out of the device: no NaN or Infinity tokens, and no crash on hostile input.

Python's `json` writes `NaN` and `Infinity`, which no standard parser (a browser's JSON.parse,
Grafana, jq) reads, and reads them back as if they were JSON. On the way out a non-finite float is
written as `null`: a value that is not a number is "no value", the same rule the frame path uses
(an unanalysed frame has no count, never 0), and one odd measurement must not turn /healthz or a
summary into a 500. `allow_nan=False` then guarantees the text is standard. On the way in the
tokens (and numbers such as 1e309 that only fit as Infinity) are refused, and input nested too deeply for the parser is a ValueError (a 400 at the API),
not a RecursionError (a 500).
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH_MESSAGE = "the JSON is nested too deeply"


class JSONInputError(ValueError):
    """Text that is not standard JSON, or that this device will not parse; the message says why."""


def finite(value: Any) -> Any:
    """`value` with every non-finite float (NaN, +-Infinity) in it replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """Standard JSON text of `value`; non-finite floats become null."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)


def _refuse_constant(token: str) -> Any:
    raise JSONInputError(f"'{token}' is not a JSON value: send numbers as finite decimals")


def _finite_float(token: str) -> float:
    number = float(token)
    if not math.isfinite(number):
        raise JSONInputError(f"the number {token[:40]} is too large for a 64-bit float")
    return number


def loads(text: str | bytes) -> Any:
    """The value of standard JSON `text`, or JSONInputError (bad syntax, NaN/Infinity, a number
    too large for a float such as 1e309, too deep)."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError as exc:
        raise JSONInputError(MAX_DEPTH_MESSAGE) from exc
    except JSONInputError:
        raise
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an int of more than 4,300 digits
        raise JSONInputError(f"the body is not valid JSON ({exc})") from exc
