"""Uploading a bundle to S3-compatible object storage (MinIO, AWS, moto) with the minio SDK.

Layout: s3://BUCKET/models/<name>/<version>/<files>, then models/<name>/<version>/bundle.json
listing every file with its sha256, written LAST: a reader (device watcher, fleet rollout) treats
a version as published only once bundle.json exists, so it never fetches half an upload.
Training artefacts (train/, tensorboard/, progress.json) stay behind: devices don't need them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from pydantic import BaseModel, ConfigDict, Field

from trainer.bundle import read_card

ENV_PREFIX = "SCOPEHIVE_S3_"
_SKIP = {"train", "tensorboard", "progress.json"}


class PublishError(RuntimeError):
    """The bundle could not be published; the message says what to check."""


class StoreConfig(BaseModel):
    """Where bundles go. From flags, SCOPEHIVE_S3_* variables, or an s3://bucket?endpoint= URL."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(min_length=1, description="host:port of the S3 API")
    bucket: str = Field("scopehive", min_length=3, description="Bucket (created if missing)")
    access_key: str = Field(min_length=1)
    secret_key: str = Field(min_length=1)
    secure: bool = Field(False, description="HTTPS (True) or plain HTTP on a lab network (False)")

    @classmethod
    def from_env(cls, **overrides: object) -> StoreConfig:
        """SCOPEHIVE_S3_ENDPOINT, _BUCKET, _ACCESS_KEY, _SECRET_KEY, _SECURE; non-None overrides win."""
        values: dict[str, object] = {}
        for field in cls.model_fields:
            raw = os.environ.get(ENV_PREFIX + field.upper())
            if raw is not None:
                values[field] = raw.lower() in ("1", "true", "yes") if field == "secure" else raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        missing = [f"--{f.replace('_', '-')} or {ENV_PREFIX}{f.upper()}" for f in ("endpoint", "access_key", "secret_key") if not values.get(f)]
        if missing:
            raise PublishError("object store not configured: give " + ", ".join(missing))
        return cls.model_validate(values)

    @classmethod
    def from_url(cls, url: str) -> StoreConfig:
        """The fleet's form, s3://bucket?endpoint=host:port&secure=0, credentials from the environment."""
        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        if parsed.scheme != "s3" or not parsed.netloc or not query.get("endpoint"):
            raise PublishError(f"store URL '{url}': use s3://bucket?endpoint=host:port[&secure=0]")
        secure = query.get("secure", ["1"])[0].lower() not in ("0", "false", "no")
        return cls.from_env(endpoint=query["endpoint"][0], bucket=parsed.netloc, secure=secure)


def _files(bundle: Path) -> list[Path]:
    return sorted(
        p for p in bundle.rglob("*")
        if p.is_file() and p.relative_to(bundle).parts[0] not in _SKIP and not p.name.startswith(".")
    )


def _client(config: StoreConfig):  # type: ignore[no-untyped-def]
    from minio import Minio

    client = Minio(config.endpoint, access_key=config.access_key, secret_key=config.secret_key, secure=config.secure)
    try:
        if not client.bucket_exists(config.bucket):
            client.make_bucket(config.bucket)
    except Exception as exc:  # urllib3 and S3 errors both mean: the store is not usable as configured
        raise PublishError(f"cannot use bucket '{config.bucket}' at {config.endpoint} ({exc}); check the endpoint and keys") from exc
    return client


def publish_bundle(bundle_dir: str | os.PathLike[str], store_config: StoreConfig | str) -> str:
    """Upload the bundle and its bundle.json marker; returns the s3:// prefix of the version."""
    config = StoreConfig.from_url(store_config) if isinstance(store_config, str) else store_config
    bundle = Path(bundle_dir)
    card = read_card(bundle)
    if not (bundle / "model.onnx").is_file():
        raise PublishError(f"{bundle}: model.onnx is missing: export the bundle first")
    client = _client(config)
    prefix = f"models/{card.name}/{card.version}"
    digests: dict[str, str] = {}
    for path in _files(bundle):
        rel = path.relative_to(bundle).as_posix()
        digests[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        try:
            client.fput_object(config.bucket, f"{prefix}/{rel}", str(path))
        except Exception as exc:
            raise PublishError(f"upload of {rel} to s3://{config.bucket}/{prefix}/ failed ({exc})") from exc
    marker = {
        "name": card.name, "version": card.version, "files": digests,
        "published": datetime.now(timezone.utc).isoformat(),
    }
    data = json.dumps(marker, indent=2, sort_keys=True).encode()
    client.put_object(config.bucket, f"{prefix}/bundle.json", io.BytesIO(data), len(data), content_type="application/json")
    return f"s3://{config.bucket}/{prefix}/"
