"""The panel on S3-compatible storage (moto's server on loopback): same behaviour as on a folder."""

from __future__ import annotations

import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
from minio import Minio

from tests.device.panel.conftest import Auth, make_app
from tests.device.panel.helpers import SyntheticRuntime


def test_capture_annotate_and_restart_on_s3(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime: SyntheticRuntime) -> None:
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", "correct horse battery")
    monkeypatch.setenv("SCOPEHIVE_S3_ACCESS_KEY", "lab-access")
    monkeypatch.setenv("SCOPEHIVE_S3_SECRET_KEY", "lab-secret")
    prefix = uuid.uuid4().hex[:8]
    url = f"s3://panel-test/{prefix}?endpoint={s3_endpoint}&secure=0"
    with make_app(tmp_path, runtime, storage=url).test_client() as client:
        auth = Auth(client)
        auth.login()
        slug = auth.project()
        image = auth.json("POST", f"/panel/api/projects/{slug}/capture", None).get_json()["image"]  # type: ignore[attr-defined]
        box = {"x1": 1, "y1": 2, "x2": 30, "y2": 40, "class_id": 2}
        assert auth.json("PUT", f"/panel/api/projects/{slug}/images/{image['id']}/annotation", {"revision": 0, "boxes": [box]}).status_code == 200  # type: ignore[attr-defined]
    s3 = Minio(s3_endpoint, access_key="lab-access", secret_key="lab-secret", secure=False)
    keys = {o.object_name for o in s3.list_objects("panel-test", prefix=f"{prefix}/", recursive=True)}
    assert f"{prefix}/projects/{slug}/annotations/{image['id']}.json" in keys
    original = s3.get_object("panel-test", f"{prefix}/{image['original']}").read()
    assert np.array_equal(cv2.imdecode(np.frombuffer(original, np.uint8), cv2.IMREAD_UNCHANGED), runtime.captured[-1][:, :, 0])  # mono camera
    with make_app(tmp_path / "other-disk", runtime, storage=url).test_client() as client:  # a fresh device, same bucket
        Auth(client).login()
        doc = client.get(f"/panel/api/projects/{slug}/images/{image['id']}/annotation").get_json()
        assert doc["revision"] == 1 and doc["boxes"][0]["class_id"] == 2
