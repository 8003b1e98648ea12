"""The object store the trainer service shares with the devices: packages come in, bundles go out.

Same URLs as the device's `panel.storage` (`file:///folder`, or `s3://bucket/prefix?endpoint=
host:port&secure=0` with the keys in SCOPEHIVE_S3_ACCESS_KEY / SCOPEHIVE_S3_SECRET_KEY), so a lab
pastes one URL into both. The trainer keeps its own small client (it never imports `device`);
writes are whole-object (a temp file renamed into place, or one S3 PUT), so a reader never sees
half a bundle.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlparse

ACCESS_KEY_ENV = "SCOPEHIVE_S3_ACCESS_KEY"
SECRET_KEY_ENV = "SCOPEHIVE_S3_SECRET_KEY"
_SEGMENT = re.compile(r"^[A-Za-z0-9._@+=-]+$")


class StoreError(RuntimeError):
    """The store cannot be read or written; the message says which key and what to check."""


def check_key(key: str) -> str:
    """Plain relative names only: a key can never leave the store's root."""
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") or not _SEGMENT.match(p) for p in parts):
        raise StoreError(f"store key '{key[:200]}' is not allowed: use relative names of letters, digits and ._@+=-")
    return key


class ObjectStore(Protocol):
    url: str

    def download(self, key: str, dest: Path) -> None:
        """Copy the object to `dest`; raises KeyError when there is none, StoreError when unreadable."""

    def upload(self, key: str, src: Path, content_type: str = "application/octet-stream") -> None:
        """Store the file under `key`, replacing what was there, all or nothing."""

    def exists(self, key: str) -> bool: ...


class FolderStore:
    """A folder as store (one machine, or a shared mount): keys are files under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = f"file://{self.root}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.url}: cannot create the store folder ({exc})") from exc

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def download(self, key: str, dest: Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise KeyError(key)
        try:
            shutil.copyfile(src, dest)
        except OSError as exc:
            raise StoreError(f"{self.url}/{key}: cannot read ({exc})") from exc

    def upload(self, key: str, src: Path, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".partial-", dir=path.parent)
            os.close(fd)
            try:
                shutil.copyfile(src, tmp)
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            finally:
                Path(tmp).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.url}/{key}: cannot write ({exc}); is the store's disk full?") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


class S3Store:
    """Any S3-compatible endpoint (MinIO, AWS, moto) through the minio SDK."""

    def __init__(self, url: str, endpoint: str, bucket: str, prefix: str, secure: bool) -> None:
        from minio import Minio

        keys = os.environ.get(ACCESS_KEY_ENV), os.environ.get(SECRET_KEY_ENV)
        if not keys[0] or not keys[1]:
            raise StoreError(f"store '{url}': set {ACCESS_KEY_ENV} and {SECRET_KEY_ENV} in the environment")
        self.url = url
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = Minio(endpoint, access_key=keys[0], secret_key=keys[1], secure=secure)
        try:
            if not self.client.bucket_exists(bucket):
                self.client.make_bucket(bucket)
        except Exception as exc:  # network and S3 errors alike: the store is not usable as configured
            raise StoreError(f"store '{url}': cannot open bucket '{bucket}' ({exc}); check the endpoint and keys") from exc

    def download(self, key: str, dest: Path) -> None:
        from minio.error import S3Error

        try:
            self.client.fget_object(self.bucket, self.prefix + check_key(key), str(dest))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise KeyError(key) from None
            raise StoreError(f"{self.url} {key}: read failed ({exc.code})") from exc
        except OSError as exc:
            raise StoreError(f"{self.url} {key}: read failed ({exc})") from exc

    def upload(self, key: str, src: Path, content_type: str = "application/octet-stream") -> None:
        try:
            self.client.fput_object(self.bucket, self.prefix + check_key(key), str(src), content_type=content_type)
        except Exception as exc:
            raise StoreError(f"{self.url} {key}: write failed ({exc})") from exc

    def exists(self, key: str) -> bool:
        from minio.error import S3Error

        try:
            self.client.stat_object(self.bucket, self.prefix + check_key(key))
            return True
        except S3Error:
            return False


def open_store(url: str) -> ObjectStore:
    """`file:///folder` (or a plain path) or `s3://bucket/prefix?endpoint=host:port&secure=0`."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = unquote(parsed.path if parsed.scheme else url)
        if not path:
            raise StoreError(f"store '{url}' names no folder: use file:///absolute/path")
        return FolderStore(Path(path))
    if parsed.scheme == "s3":
        query = parse_qs(parsed.query)
        endpoint = (query.get("endpoint") or [""])[0]
        if not parsed.netloc or not endpoint:
            raise StoreError(f"store '{url}' needs a bucket and ?endpoint=host:port (s3://scopehive?endpoint=minio:9000)")
        secure = (query.get("secure") or ["1"])[0].lower() not in ("0", "false", "no")
        return S3Store(url, endpoint, parsed.netloc, parsed.path, secure)
    raise StoreError(f"store '{url}': scheme '{parsed.scheme}' is not supported; use file:// or s3://")
