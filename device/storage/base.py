"""The storage interface: keys are '/'-separated names, values are bytes (or JSON on top)."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from typing import Any

_SEGMENT = re.compile(r"^[A-Za-z0-9._@+=-]+$")


class StorageError(RuntimeError):
    """The store could not be read or written; the message says which key and why."""


def check_key(key: str) -> str:
    """Refuse keys that could escape the store's root (.., absolute, odd characters)."""
    if not key or key.startswith("/") or key.endswith("/"):
        raise StorageError(f"storage key '{key}' is not allowed: use relative names like 'a/b.json'")
    for segment in key.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.match(segment):
            raise StorageError(
                f"storage key '{key}' is not allowed: segment '{segment}' must be a plain name "
                "of letters, digits and ._@+=-"
            )
    return key


class Storage(ABC):
    """Bytes under keys. Writes are all-or-nothing: a reader never sees half an object."""

    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store `data` under `key`, replacing what was there."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes under `key`; raises KeyError when there is none."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key`; removing a missing key is not an error."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Every key under `prefix` (recursively), sorted."""

    def put_json(self, key: str, value: Any) -> None:
        self.put(key, json.dumps(value, indent=1, sort_keys=True).encode(), "application/json")

    def get_json(self, key: str) -> Any:
        try:
            return json.loads(self.get(key))
        except json.JSONDecodeError as exc:
            raise StorageError(f"{self.describe(key)} is not valid JSON ({exc})") from exc

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key under `prefix`; returns how many went."""
        keys = self.list(prefix)
        for key in keys:
            self.delete(key)
        return len(keys)

    def describe(self, key: str) -> str:
        """Where `key` lives, for error messages."""
        return key
