"""Both stores honour the same contract: round trips, listing, deletes, refusals."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from device.storage import LocalStorage, Storage, StorageError, open_storage


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Storage]:
    if request.param == "local":
        yield open_storage(f"file://{tmp_path}/store")
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    monkeypatch.setenv("SCOPEHIVE_S3_ACCESS_KEY", "test-access")
    monkeypatch.setenv("SCOPEHIVE_S3_SECRET_KEY", "test-secret")
    yield open_storage(f"s3://scopehive-test/{uuid.uuid4().hex[:8]}?endpoint={endpoint}&secure=0")


def test_bytes_and_json_round_trip(store: Storage) -> None:
    blob = bytes(range(256)) * 100
    store.put("projects/a/images/1/original.tif", blob)
    store.put_json("projects/a/project.json", {"name": "A", "classes": ["cell"]})
    assert store.get("projects/a/images/1/original.tif") == blob
    assert store.get_json("projects/a/project.json") == {"name": "A", "classes": ["cell"]}
    assert store.exists("projects/a/project.json") and not store.exists("projects/a/nope.json")
    assert store.list("projects/a/") == ["projects/a/images/1/original.tif", "projects/a/project.json"]
    assert store.list("projects/a/images/") == ["projects/a/images/1/original.tif"]


def test_overwrite_delete_and_missing(store: Storage) -> None:
    store.put("k/v.bin", b"one")
    store.put("k/v.bin", b"two")
    assert store.get("k/v.bin") == b"two"
    store.put("k/w.bin", b"x")
    assert store.delete_prefix("k/") == 2
    assert store.list("k/") == []
    store.delete("k/v.bin")  # deleting a missing key is fine
    with pytest.raises(KeyError):
        store.get("k/v.bin")


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a/../../b", "a//b", "a/b/", "sp ace", ""])
def test_keys_that_escape_are_refused(store: Storage, key: str) -> None:
    with pytest.raises(StorageError, match="not allowed"):
        store.put(key, b"x")


def test_sixteen_bit_tiff_is_kept_byte_for_byte(store: Storage) -> None:
    import cv2

    image = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 13).astype(np.uint16)
    ok, encoded = cv2.imencode(".tiff", image)
    assert ok
    store.put("img/original.tiff", encoded.tobytes())
    back = cv2.imdecode(np.frombuffer(store.get("img/original.tiff"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and np.array_equal(back, image)


def test_local_writes_leave_no_partial_files(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    store.put("a/b.bin", b"data")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.bin"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://x/y", "not supported"),
        ("s3://bucket?endpoint=127.0.0.1:1", "SCOPEHIVE_S3_ACCESS_KEY"),
    ],
)
def test_bad_urls_say_what_to_do(url: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCOPEHIVE_S3_ACCESS_KEY", raising=False)
    with pytest.raises(StorageError, match=message):
        open_storage(url)


def test_s3_url_without_endpoint_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPEHIVE_S3_ACCESS_KEY", "a")
    monkeypatch.setenv("SCOPEHIVE_S3_SECRET_KEY", "b")
    with pytest.raises(StorageError, match=r"\?endpoint=host:port"):
        open_storage("s3://bucket")


def test_s3_going_away_is_a_storage_error(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib3
    from minio import Minio

    from device.storage.s3 import S3Storage
    from tests.conftest import _free_port

    monkeypatch.setenv("SCOPEHIVE_S3_ACCESS_KEY", "a")
    monkeypatch.setenv("SCOPEHIVE_S3_SECRET_KEY", "b")
    store = open_storage(f"s3://gone-test?endpoint={s3_endpoint}&secure=0")
    assert isinstance(store, S3Storage)
    store.client = Minio(f"127.0.0.1:{_free_port()}", access_key="a", secret_key="b", secure=False,
                         http_client=urllib3.PoolManager(retries=urllib3.Retry(total=0)))
    for action in (lambda: store.put("k", b"v"), lambda: store.get("k"), lambda: store.list(""), lambda: store.exists("k")):
        with pytest.raises(StorageError, match="cannot reach the S3 endpoint"):
            action()
