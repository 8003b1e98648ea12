"""Opening a store from a URL, and handing the open store to Flask requests (flaskr style)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import ParseResult, parse_qs, unquote, urlparse

from flask import Flask, current_app

from device.storage.base import Storage, StorageError
from device.storage.local import LocalStorage

EXTENSION_KEY = "scopehive.storage"
ACCESS_KEY_ENV = "SCOPEHIVE_S3_ACCESS_KEY"
SECRET_KEY_ENV = "SCOPEHIVE_S3_SECRET_KEY"


def open_storage(url: str, access_key_env: str = ACCESS_KEY_ENV, secret_key_env: str = SECRET_KEY_ENV) -> Storage:
    """`file:///path` (or a plain path) or `s3://bucket/prefix?endpoint=host:port&secure=0`.

    S3 credentials come from the environment (SCOPEHIVE_S3_ACCESS_KEY / SCOPEHIVE_S3_SECRET_KEY by
    default), never from the URL, so config files and logs never hold secrets.
    """
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = unquote(parsed.path if parsed.scheme else url)
        if not path:
            raise StorageError(f"storage URL '{url}' has no folder: use file:///absolute/path")
        return LocalStorage(Path(path))
    if parsed.scheme == "s3":
        keys = (os.environ.get(access_key_env), os.environ.get(secret_key_env))
        if not keys[0] or not keys[1]:
            raise StorageError(f"storage URL '{url}': set {access_key_env} and {secret_key_env} in the environment")
        return _open_s3(url, parsed, (str(keys[0]), str(keys[1])))
    raise StorageError(f"storage URL '{url}': scheme '{parsed.scheme}' is not supported; use file:// or s3://")


def _open_s3(url: str, parsed: ParseResult, keys: tuple[str, str]) -> Storage:
    import urllib3
    from minio import Minio

    from device.storage.s3 import S3Storage

    bucket, prefix, query = parsed.netloc, parsed.path.strip("/"), parse_qs(parsed.query)
    endpoint = (query.get("endpoint") or [""])[0]
    if not bucket or not endpoint:
        raise StorageError(f"storage URL '{url}' needs a bucket and ?endpoint=host:port (s3://bucket?endpoint=minio:9000)")
    secure = (query.get("secure") or ["1"])[0].lower() not in ("0", "false", "no")
    region = (query.get("region") or [""])[0] or None
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5, read=60),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
    client = Minio(endpoint, access_key=keys[0], secret_key=keys[1], secure=secure, region=region, http_client=http)
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
