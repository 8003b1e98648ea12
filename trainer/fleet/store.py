"""The object store as the fleet code sees it: published bundles and the rollout history.

Layout (shared with trainer/publish.py and the device watcher, see docs/fleet.md):
  models/<name>/<version>/...               the bundle's files
  models/<name>/<version>/bundle.json       {files: {path: sha256}} written last = complete
  models/<name>/<version>/engines/<file>    TensorRT engines built and uploaded by devices
  models/<name>/<version>/engines.json      {engines: [EngineSpec, ...]} for those engines
  fleet/<fleet slug>/history.json           every rollout with each device's previous model

URL form is the device's: s3://bucket?endpoint=host:port&secure=0, credentials from
SCOPEHIVE_S3_ACCESS_KEY / SCOPEHIVE_S3_SECRET_KEY (never in the URL, so never in logs).
"""

from __future__ import annotations

import io
import json
import os
from typing import Any
from urllib.parse import parse_qs, urlparse

ACCESS_KEY_ENV = "SCOPEHIVE_S3_ACCESS_KEY"
SECRET_KEY_ENV = "SCOPEHIVE_S3_SECRET_KEY"


class StoreError(RuntimeError):
    """The object store could not be reached or read; the message says which and what to check."""


class FleetStore:
    """JSON documents and existence checks on one bucket, through the minio SDK."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def from_url(cls, url: str) -> FleetStore:
        from minio import Minio

        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        endpoint = (query.get("endpoint") or [""])[0]
        if parsed.scheme != "s3" or not parsed.netloc or not endpoint:
            raise StoreError(f"store URL '{url}': use s3://bucket?endpoint=host:port[&secure=0]")
        access, secret = os.environ.get(ACCESS_KEY_ENV), os.environ.get(SECRET_KEY_ENV)
        if not access or not secret:
            raise StoreError(f"store URL '{url}': set {ACCESS_KEY_ENV} and {SECRET_KEY_ENV} in the environment")
        secure = (query.get("secure") or ["1"])[0].lower() not in ("0", "false", "no")
        client = Minio(endpoint, access_key=access, secret_key=secret, secure=secure)
        try:
            if not client.bucket_exists(parsed.netloc):
                client.make_bucket(parsed.netloc)
        except OSError as exc:
            raise StoreError(f"cannot reach the object store at {endpoint} ({exc}); is it running?") from exc
        return cls(client, parsed.netloc)

    def get_json(self, key: str) -> Any | None:
        """The document under `key`, or None when there is none."""
        from minio.error import S3Error

        try:
            response = self.client.get_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                return None
            raise StoreError(f"s3://{self.bucket}/{key}: read failed ({exc.code})") from exc
        try:
            return json.loads(response.read())
        finally:
            response.close()
            response.release_conn()

    def put_json(self, key: str, document: Any) -> None:
        data = json.dumps(document, indent=2, sort_keys=True).encode()
        self.client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type="application/json")

    def is_published(self, name: str, version: str) -> bool:
        """A bundle counts as published once its bundle.json (written last) is there."""
        return self.get_json(f"models/{name}/{version}/bundle.json") is not None

    def describe(self) -> str:
        return f"s3://{self.bucket}"
