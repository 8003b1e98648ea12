"""S3-compatible object storage (MinIO, AWS, moto) through the minio SDK."""

from __future__ import annotations

import io

import urllib3
from minio import Minio
from minio.error import S3Error

from device.storage.base import Storage, StorageError, check_key

_NETWORK = (OSError, urllib3.exceptions.HTTPError)  # refused, DNS, timeouts, retries exhausted


def _unreachable(where: str, exc: Exception) -> StorageError:
    return StorageError(f"{where}: cannot reach the S3 endpoint ({type(exc).__name__}); check that it runs and retry")


class S3Storage(Storage):
    """Keys live under `prefix` in one bucket; S3 PUTs are atomic, so no temp objects needed."""

    def __init__(self, client: Minio, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        try:
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)
        except S3Error as exc:
            raise StorageError(f"s3://{bucket}: cannot open the bucket ({exc.code}: {exc.message})") from exc
        except _NETWORK as exc:
            raise StorageError(
                f"s3://{bucket}: cannot reach the S3 endpoint ({exc}); check the endpoint and that it runs"
            ) from exc

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        try:
            self.client.put_object(self.bucket, self._name(key), io.BytesIO(data), len(data), content_type=content_type)
        except S3Error as exc:
            raise StorageError(f"{self.describe(key)}: write failed ({exc.code}: {exc.message})") from exc
        except _NETWORK as exc:
            raise _unreachable(self.describe(key), exc) from exc

    def get(self, key: str) -> bytes:
        response = None
        try:
            response = self.client.get_object(self.bucket, self._name(key))
            return bytes(response.read())
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise KeyError(key) from None
            raise StorageError(f"{self.describe(key)}: read failed ({exc.code}: {exc.message})") from exc
        except _NETWORK as exc:
            raise _unreachable(self.describe(key), exc) from exc
        finally:
            if response is not None:
                response.close()
                response.release_conn()

    def exists(self, key: str) -> bool:
        try:
            self.client.stat_object(self.bucket, self._name(key))
            return True
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"):
                return False
            raise StorageError(f"{self.describe(key)}: stat failed ({exc.code}: {exc.message})") from exc
        except _NETWORK as exc:
            raise _unreachable(self.describe(key), exc) from exc

    def delete(self, key: str) -> None:
        try:
            self.client.remove_object(self.bucket, self._name(key))
        except S3Error as exc:
            raise StorageError(f"{self.describe(key)}: delete failed ({exc.code}: {exc.message})") from exc
        except _NETWORK as exc:
            raise _unreachable(self.describe(key), exc) from exc

    def list(self, prefix: str = "") -> list[str]:
        try:
            objects = self.client.list_objects(self.bucket, prefix=self.prefix + prefix, recursive=True)
            return sorted(str(obj.object_name)[len(self.prefix) :] for obj in objects if obj.object_name)
        except S3Error as exc:
            raise StorageError(f"{self.describe(prefix)}: listing failed ({exc.code}: {exc.message})") from exc
        except _NETWORK as exc:
            raise _unreachable(self.describe(prefix), exc) from exc

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"
