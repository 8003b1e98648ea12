"""The JSON object an API call must send; anything else is a 400 that says what to send."""

from __future__ import annotations

from typing import Any

from flask import abort, request


def json_object(hint: str = "send a JSON object") -> dict[str, Any]:
    """The request's JSON body as a dict, or abort(400, hint): a list, a number or bad JSON changes nothing."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description=hint)
    return body
