"""The JSON object an API call must send; anything else is a 400 that says what to send.

The body is parsed by device/jsonsafe.py: NaN/Infinity tokens, numbers too large for a float and
nesting too deep for the parser are a 400 that says so (the size is capped before parsing, see
device/panel/security.py)."""

from __future__ import annotations

from typing import Any

from flask import abort, request

from device.jsonsafe import JSONInputError, loads


def json_object(hint: str = "send a JSON object") -> dict[str, Any]:
    """The request's JSON body as a dict, or abort(400, hint): a list, a number or bad JSON changes nothing."""
    if not request.is_json:
        abort(400, description=f"{hint} (Content-Type: application/json)" if "Content-Type" not in hint else hint)
    try:
        body = loads(request.get_data(cache=True))
    except JSONInputError as exc:
        abort(400, description=f"{exc}: {hint}")
    if not isinstance(body, dict):
        abort(400, description=hint)
    return body
