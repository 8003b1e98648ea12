"""A stand-in for the balena API (v7, OData) on loopback: balenaCloud can't be reached from here.

It implements only the resources and the OData subset our code uses, but the way the real API
does, so the real balena-sdk (trainer) and plain `requests` (device watcher) work against it
unchanged: `$filter` with eq/and/or/parentheses and navigation paths (`device/uuid`), `$select`,
`$expand` with nested `$select`, `$orderby`, key access `device(1)`, `device(uuid='...')`,
`device_tag(device=1,tag_key='k')`, POST that answers 409 "unique" on a duplicate natural key
(which balena-sdk's upsert relies on), PATCH and DELETE by key or `$filter`.

Permissions follow balena's: a user token sees everything; a device API key (what
`io.balena.features.balena-api` injects as BALENA_API_KEY) sees its own device and reads and
writes only its own tags.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.http_stubs import JSONHandler

_NATURAL_KEYS = {
    "device_tag": ("device", "tag_key"),
    "application_environment_variable": ("application", "name"),
    "application_tag": ("application", "tag_key"),
}
# Foreign keys: field -> resource it points at (for navigation and $expand).
_LINKS = {
    "device": "device",
    "application": "application",
    "belongs_to__application": "application",
    "is_of__device_type": "device_type",
}
_TOKEN = re.compile(r"\s*(?:(\()|(\))|('(?:[^']|'')*')|(-?\d+(?:\.\d+)?)|([A-Za-z_][\w/]*))")


class ODataError(ValueError):
    pass


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text.rstrip()):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ODataError(f"cannot parse $filter at {text[pos:]!r}")
        out.append(match.group(0).strip())
        pos = match.end()
    return out


@dataclass
class FakeBalena:
    """The API's tables in memory, served over HTTP on 127.0.0.1."""

    user_token: str = "user-token"
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    device_keys: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)  # method, path, JSON body
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for name in ("application", "device", "device_type", "device_tag", *_NATURAL_KEYS):
            self.tables.setdefault(name, [])
        self._server: ThreadingHTTPServer | None = None

    # --- setting up a fleet -------------------------------------------------------------------
    def add(self, resource: str, **row: Any) -> dict[str, Any]:
        with self.lock:
            table = self.tables[resource]
            row["id"] = max((r["id"] for r in table), default=0) + 1
            table.append(row)
            return row

    def add_fleet(self, slug: str) -> int:
        return int(self.add("application", slug=slug.lower(), uuid=f"{abs(hash(slug)):032x}"[:32], app_name=slug.split("/")[-1])["id"])

    def add_device(self, fleet_id: int, uuid: str, name: str, device_type: str, key: str = "") -> int:
        types = [t for t in self.tables["device_type"] if t["slug"] == device_type]
        type_id = types[0]["id"] if types else self.add("device_type", slug=device_type)["id"]
        device_id = int(self.add("device", uuid=uuid, device_name=name, is_online=True,
                                 belongs_to__application=fleet_id, is_of__device_type=type_id)["id"])
        if key:
            self.device_keys[key] = device_id
        return device_id

    def tag(self, device_id: int, key: str) -> str | None:
        rows = [t for t in self.tables["device_tag"] if t["device"] == device_id and t["tag_key"] == key]
        return rows[0]["value"] if rows else None

    # --- serving -------------------------------------------------------------------------------
    def start(self) -> str:
        handler = _handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_port}/"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # --- OData evaluation ------------------------------------------------------------------------
    def _value(self, resource: str, row: dict[str, Any], path: str) -> Any:
        parts = path.split("/")
        for index, part in enumerate(parts):
            value = row.get(part)
            if index == len(parts) - 1:
                return value
            target = _LINKS.get(part)
            linked = [r for r in self.tables.get(target or "", []) if r["id"] == value]
            if not linked:
                return None
            row, resource = linked[0], target or resource
        return None

    def matches(self, resource: str, row: dict[str, Any], text: str) -> bool:
        tokens = _tokens(text)
        result, rest = self._or(resource, row, tokens)
        if rest:
            raise ODataError(f"unexpected {' '.join(rest)!r} in $filter")
        return result

    def _or(self, resource: str, row: dict[str, Any], tokens: list[str]) -> tuple[bool, list[str]]:
        value, tokens = self._and(resource, row, tokens)
        while tokens and tokens[0] == "or":
            other, tokens = self._and(resource, row, tokens[1:])
            value = value or other
        return value, tokens

    def _and(self, resource: str, row: dict[str, Any], tokens: list[str]) -> tuple[bool, list[str]]:
        value, tokens = self._primary(resource, row, tokens)
        while tokens and tokens[0] == "and":
            other, tokens = self._primary(resource, row, tokens[1:])
            value = value and other
        return value, tokens

    def _primary(self, resource: str, row: dict[str, Any], tokens: list[str]) -> tuple[bool, list[str]]:
        if tokens and tokens[0] == "(":
            value, rest = self._or(resource, row, tokens[1:])
            if not rest or rest[0] != ")":
                raise ODataError("unbalanced parentheses in $filter")
            return value, rest[1:]
        if len(tokens) < 3 or tokens[1] != "eq":
            raise ODataError(f"only 'field eq value' comparisons are supported, got {' '.join(tokens[:3])!r}")
        return self._value(resource, row, tokens[0]) == _literal(tokens[2]), tokens[3:]

    def select(self, resource: str, row: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        out = dict(row)
        for name, options in _expands(query.get("$expand", "")).items():
            target = _LINKS[name]
            linked = [r for r in self.tables[target] if r["id"] == row.get(name)]
            out[name] = [self.select(target, r, options) for r in linked]
        if "$select" in query:
            keep = set(query["$select"].split(",")) | set(_expands(query.get("$expand", "")))
            out = {k: v for k, v in out.items() if k in keep}
        return out


def _literal(token: str) -> Any:
    if token.startswith("'"):
        return token[1:-1].replace("''", "'")
    if token in ("true", "false"):
        return token == "true"
    if token == "null":
        return None
    return float(token) if "." in token else int(token)


def _expands(text: str) -> dict[str, dict[str, str]]:
    """'a($select=x),b' -> {'a': {'$select': 'x'}, 'b': {}} (one level, enough for our calls)."""
    out: dict[str, dict[str, str]] = {}
    for match in re.finditer(r"(\w+)(?:\(([^)]*)\))?", text):
        inner = dict(part.split("=", 1) for part in (match.group(2) or "").split(";") if "=" in part)
        out[match.group(1)] = inner
    return out


def _key_filter(key: str) -> str:
    """device(1) / device(uuid='x') / device_tag(device=1,tag_key='k') -> an equivalent $filter."""
    if re.fullmatch(r"\d+", key):
        return f"id eq {key}"
    parts = re.findall(r"(\w+)=('(?:[^']|'')*'|\d+)", key)
    return " and ".join(f"{name} eq {value}" for name, value in parts)


def _handler(api: FakeBalena) -> type[BaseHTTPRequestHandler]:
    class Handler(JSONHandler):
        def _reply(self, status: int, payload: Any) -> None:
            self.reply_json(status, payload)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null") if length else None
            parts = urlsplit(self.path)
            with api.lock:
                api.requests.append((self.command, unquote(self.path), body))
            match = re.fullmatch(r"/v7/(\w+)(?:\((.*)\))?", unquote(parts.path))
            if not match or match.group(1) not in api.tables:
                self._reply(404, {"error": f"no such resource {parts.path}"})
                return
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
            if token != api.user_token and token not in api.device_keys:
                self._reply(401, "Unauthorized")
                return
            query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            filters = [f for f in (query.get("$filter"), match.group(2) and _key_filter(match.group(2))) if f]
            try:
                status, payload = _dispatch(api, self.command, match.group(1), filters, query, body,
                                            api.device_keys.get(token))
            except ODataError as exc:
                status, payload = 400, {"error": str(exc)}
            self._reply(status, payload)

        do_GET = do_POST = do_PATCH = do_DELETE = _handle

    return Handler


def _visible(resource: str, row: dict[str, Any], device_id: int | None) -> bool:
    """A device key sees its own device row and its own tags, nothing else."""
    if device_id is None:
        return True
    if resource == "device":
        return bool(row["id"] == device_id)
    return resource == "device_tag" and row["device"] == device_id


def _dispatch(api: FakeBalena, method: str, resource: str, filters: list[str], query: dict[str, str],
              body: Any, device_id: int | None) -> tuple[int, Any]:
    with api.lock:
        table = api.tables[resource]
        rows = [r for r in table if _visible(resource, r, device_id)
                and all(api.matches(resource, r, f) for f in filters)]
        if method == "GET":
            order = query.get("$orderby", "").split(" ")[0]
            if order:
                rows = sorted(rows, key=lambda r: str(r.get(order, "")))
            return 200, {"d": [api.select(resource, r, query) for r in rows]}
        if method == "POST":
            if not isinstance(body, dict) or (device_id is not None and not _visible(resource, body, device_id)):
                return 401, "Unauthorized"
            natural = _NATURAL_KEYS.get(resource, ())
            if natural and any(all(r.get(k) == body.get(k) for k in natural) for r in table):
                return 409, "Unique key constraint violated"
            row = {**body, "id": max((r["id"] for r in table), default=0) + 1}
            table.append(row)
            return 201, row
        if method == "PATCH":
            for row in rows:
                row.update(body or {})
            return 200, "OK"
        if method == "DELETE":
            api.tables[resource] = [r for r in table if r not in rows]
            return 200, "OK"
    return 405, "Method not allowed"
