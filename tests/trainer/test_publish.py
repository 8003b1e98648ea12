"""Publishing a bundle to a real S3 API (moto's server on loopback) through the minio SDK."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from minio import Minio

from trainer.bundle import read_card
from trainer.publish import PublishError, StoreConfig, publish_bundle


def _store(endpoint: str, bucket: str) -> StoreConfig:
    return StoreConfig(endpoint=endpoint, bucket=bucket, access_key="test-access", secret_key="test-secret", secure=False)


def test_publish_uploads_every_file_then_the_marker(trained_bundle: Path, s3_endpoint: str) -> None:
    card = read_card(trained_bundle)
    url = publish_bundle(trained_bundle, _store(s3_endpoint, "models-a"))
    prefix = f"models/{card.name}/{card.version}"
    assert url == f"s3://models-a/{prefix}/"
    client = Minio(s3_endpoint, access_key="test-access", secret_key="test-secret", secure=False)
    keys = {o.object_name for o in client.list_objects("models-a", prefix=prefix + "/", recursive=True)}
    files = ("model.onnx", "model.json", "report.md", "report.png", "warm_start.weights.h5", "warm_start.json")
    assert keys == {f"{prefix}/{name}" for name in (*files, "bundle.json")}
    marker = json.loads(client.get_object("models-a", f"{prefix}/bundle.json").read())
    assert set(marker["files"]) == set(files)
    onnx_bytes = client.get_object("models-a", f"{prefix}/model.onnx").read()
    assert hashlib.sha256(onnx_bytes).hexdigest() == marker["files"]["model.onnx"]
    assert onnx_bytes == (trained_bundle / "model.onnx").read_bytes()


def test_publish_from_the_command_line_with_environment(trained_bundle: Path, s3_endpoint: str) -> None:
    from .test_cli import run_trainer

    env = {"SCOPEHIVE_S3_ENDPOINT": s3_endpoint, "SCOPEHIVE_S3_ACCESS_KEY": "k", "SCOPEHIVE_S3_SECRET_KEY": "s"}
    result = run_trainer("publish", str(trained_bundle), "--bucket", "models-b", env=env)
    assert result.returncode == 0, result.stderr
    assert "published to s3://models-b/models/" in result.stdout


def test_store_url_form_and_missing_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPEHIVE_S3_ACCESS_KEY", "a")
    monkeypatch.setenv("SCOPEHIVE_S3_SECRET_KEY", "b")
    config = StoreConfig.from_url("s3://lab-models?endpoint=10.0.0.5:9000&secure=0")
    assert (config.bucket, config.endpoint, config.secure) == ("lab-models", "10.0.0.5:9000", False)
    monkeypatch.delenv("SCOPEHIVE_S3_SECRET_KEY")
    monkeypatch.delenv("SCOPEHIVE_S3_ENDPOINT", raising=False)
    with pytest.raises(PublishError, match="SCOPEHIVE_S3_ENDPOINT"):
        StoreConfig.from_env()


def test_unreachable_store_is_a_clear_error(trained_bundle: Path) -> None:
    with pytest.raises(PublishError, match="check the endpoint"):
        publish_bundle(trained_bundle, _store("127.0.0.1:9", "models-c"))
