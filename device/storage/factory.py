"""Opening a store from a URL, and handing the open store to Flask requests (flaskr style)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from flask import Flask, current_app

from device.storage.base import Storage, StorageError
from device.storage.local import LocalStorage

EXTENSION_KEY = "scopehive.storage"
ACCESS_KEY_ENV = "SCOPEHIVE_S3_ACCESS_KEY"
SECRET_KEY_ENV = "SCOPEHIVE_S3_SECRET_KEY"


def open_storage(url: str) -> Storage:
    """`file:///path` (or a plain path) or `s3://bucket/prefix?endpoint=host:port&secure=0`.

    S3 credentials come from SCOPEHIVE_S3_ACCESS_KEY / SCOPEHIVE_S3_SECRET_KEY, never from the
    URL, so config files and logs never hold secrets.
    """
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = unquote(parsed.path if parsed.scheme else url)
        if not path:
            raise StorageError(f"storage URL '{url}' has no folder: use file:///absolute/path")
        return LocalStorage(Path(path))
    if parsed.scheme == "s3":
        return _open_s3(url, parsed.netloc, parsed.path.strip("/"), parse_qs(parsed.query))
    raise StorageError(f"storage URL '{url}': scheme '{parsed.scheme}' is not supported; use file:// or s3://")


def _open_s3(url: str, bucket: str, prefix: str, query: dict[str, list[str]]) -> Storage:
    from minio import Minio

    from device.storage.s3 import S3Storage

    endpoint = (query.get("endpoint") or [""])[0]
    if not bucket or not endpoint:
        raise StorageError(f"storage URL '{url}' needs a bucket and ?endpoint=host:port (s3://bucket?endpoint=minio:9000)")
    secure = (query.get("secure") or ["1"])[0].lower() not in ("0", "false", "no")
    access, secret = os.environ.get(ACCESS_KEY_ENV), os.environ.get(SECRET_KEY_ENV)
    if not access or not secret:
        raise StorageError(f"storage URL '{url}': set {ACCESS_KEY_ENV} and {SECRET_KEY_ENV} in the environment")
    region = (query.get("region") or [None])[0]
    client = Minio(endpoint, access_key=access, secret_key=secret, secure=secure, region=region)
    return S3Storage(client, bucket, prefix)


def init_app(app: Flask, storage: Storage) -> None:
    """Make `storage` the store every request of `app` sees through `get_storage()`."""
    app.extensions[EXTENSION_KEY] = storage


def get_storage() -> Storage:
    try:
        storage: Storage = current_app.extensions[EXTENSION_KEY]
    except KeyError:
        raise StorageError("no storage registered: call device.storage.init_app(app, storage) first") from None
    return storage
