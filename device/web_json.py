"""The Flask JSON provider of the device's app: every JSON response and every JSON body parsed by
Flask goes through device/jsonsafe.py (non-finite floats written as null, NaN/Infinity tokens and
too-deep nesting refused as bad JSON, a 400, never a 500)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from device import jsonsafe


class StandardJSONProvider(DefaultJSONProvider):
    """Flask's provider (its `default` for dates, dataclasses, ...) with standard output only."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        return jsonsafe.dumps(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """JSONInputError is a ValueError, so `request.get_json(silent=True)` answers None for it."""
        return jsonsafe.loads(s)


def install(app: Flask) -> None:
    """Make `app` speak standard JSON only (idempotent: the app factory and the panel both call it)."""
    if not isinstance(app.json, StandardJSONProvider):
        app.json = StandardJSONProvider(app)
