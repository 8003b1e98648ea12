"""Capture and upload: originals kept exactly, bad uploads refused with a message and no change."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from device.panel.store import ProjectStore
from tests.device.panel.conftest import Auth
from tests.device.panel.helpers import SyntheticRuntime


def _store(app: Flask) -> ProjectStore:
    store: ProjectStore = app.extensions["scopehive.panel"].projects
    return store


def _png(image: np.ndarray) -> bytes:
    return bytes(cv2.imencode(".png", image)[1].tobytes())


def test_capture_saves_the_full_resolution_original(app: Flask, auth: Auth, client: FlaskClient, runtime: SyntheticRuntime) -> None:
    auth.login()
    slug = auth.project()
    for expected_total in (1, 2, 3):
        response = auth.json("POST", f"/panel/api/projects/{slug}/capture", None)
        assert response.status_code == 201  # type: ignore[attr-defined]
        assert response.get_json()["total"] == expected_total  # type: ignore[attr-defined]
    metas = _store(app).list_images(slug)
    assert [(m.width, m.height, m.source) for m in metas] == [(320, 240, "capture")] * 3
    for meta, frame in zip(metas, runtime.captured, strict=True):
        saved = cv2.imdecode(np.frombuffer(_store(app).read(meta.original), np.uint8), cv2.IMREAD_UNCHANGED)
        # the synthetic microscope is a monochrome camera: one channel kept, the camera's pixels exactly
        assert meta.channels == 1 and saved.ndim == 2
        assert np.array_equal(saved, frame[:, :, 0]), "the stored frame must be the camera's pixels, not the preview JPEG"
        assert meta.acquisition is not None and meta.acquisition.frame_index is not None


def test_colour_frames_keep_three_channels_and_mono_frames_one() -> None:
    from device.panel.imaging import camera_channels

    grey = np.random.default_rng(1).integers(0, 65535, (20, 30), dtype=np.uint16)
    assert camera_channels(np.dstack([grey] * 3)).shape == (20, 30)
    colour = np.dstack([grey, grey, grey // 2])
    assert camera_channels(colour) is colour
    assert camera_channels(grey) is grey


def test_upload_many_keeps_bytes_and_16_bit(app: Flask, auth: Auth, client: FlaskClient) -> None:
    auth.login()
    slug = auth.project()
    deep = (np.random.default_rng(0).integers(0, 65535, (60, 80))).astype(np.uint16)
    tiff = bytes(cv2.imencode(".tiff", deep)[1].tobytes())
    png = _png(np.full((30, 40, 3), 90, np.uint8))
    files = [(io.BytesIO(tiff), "deep.tiff"), (io.BytesIO(png), "flat.png")]
    response = auth.post(f"/panel/api/projects/{slug}/images", data={"files": files}, content_type="multipart/form-data")
    assert response.status_code == 201  # type: ignore[attr-defined]
    by_name = {m.file_name: m for m in _store(app).list_images(slug)}
    assert _store(app).read(by_name["deep.tiff"].original) == tiff
    assert by_name["deep.tiff"].dtype == "uint16"
    display = cv2.imdecode(np.frombuffer(_store(app).read(f"projects/{slug}/images/{by_name['deep.tiff'].id}/display.jpg"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert display.dtype == np.uint8 and display.shape[:2] == (60, 80)
    assert client.get(f"/panel/api/projects/{slug}/images/{by_name['flat.png'].id}/original").data == png


def test_bad_uploads_are_refused_and_change_nothing(app: Flask, auth: Auth, client: FlaskClient) -> None:
    auth.login()
    slug = auth.project()
    good = _png(np.zeros((10, 10, 3), np.uint8))
    huge = _png(np.zeros((1500, 1500), np.uint8))  # 2.25 MP > the test app's 2 MP limit
    cases = {
        "not a PNG, JPEG or TIFF": [(io.BytesIO(b"%PDF-1.4 hello"), "paper.pdf"), (io.BytesIO(good), "ok.png")],
        "over the limit": [(io.BytesIO(huge), "huge.png")],
        "cannot be decoded": [(io.BytesIO(good[:40]), "cut.png")],
    }
    for message, files in cases.items():
        response = auth.post(f"/panel/api/projects/{slug}/images", data={"files": files}, content_type="multipart/form-data")
        body = response.get_json()  # type: ignore[attr-defined]
        assert response.status_code == 400, message  # type: ignore[attr-defined]
        assert body["error"].startswith("nothing was uploaded") and any(message in p for p in body["problems"]), body
    too_big = io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"0" * (6 * 1024 * 1024))
    response = auth.post(f"/panel/api/projects/{slug}/images", data={"files": [(too_big, "big.png")]}, content_type="multipart/form-data")
    assert response.status_code == 413 and "5 MB limit" in response.get_json()["error"]  # type: ignore[attr-defined]
    assert _store(app).list_images(slug) == []


def test_file_names_cannot_escape(app: Flask, auth: Auth) -> None:
    auth.login()
    slug = auth.project()
    png = _png(np.zeros((8, 8, 3), np.uint8))
    auth.post(f"/panel/api/projects/{slug}/images", data={"files": [(io.BytesIO(png), "../../etc/evil.png")]}, content_type="multipart/form-data")
    (meta,) = _store(app).list_images(slug)
    assert meta.file_name == "evil.png"
    assert all(key.startswith(f"projects/{slug}/") for key in _store(app).storage.list("projects/"))


def test_a_failing_store_says_so_and_keeps_nothing(app: Flask, auth: Auth, monkeypatch: pytest.MonkeyPatch) -> None:
    from device.storage import StorageError

    auth.login()
    slug = auth.project()
    store = _store(app).storage
    real_put = store.put

    def failing_put(key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        if key.endswith("/meta.json"):
            raise StorageError(f"{key}: write failed (disk full)")
        real_put(key, data, content_type)

    monkeypatch.setattr(store, "put", failing_put)
    response = auth.json("POST", f"/panel/api/projects/{slug}/capture", None)
    assert response.status_code == 503  # type: ignore[attr-defined]
    assert "storage problem, nothing was changed" in response.get_json()["error"]  # type: ignore[attr-defined]
    assert _store(app).list_images(slug) == []
    assert store.list(f"projects/{slug}/images/") == [], "no orphaned originals or display copies"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("x" * 1000 + ".png", "x" * 116 + ".png"),  # a long name keeps its extension
        ("x.exe", "x.png"),  # a PNG called .exe is stored as what it is
        ("report.pdf.PNG", "report.pdf.png"),
        ("scan", "scan.png"),
        ("photo.jpeg", "photo.png"),  # the content decides, not the claim
    ],
)
def test_stored_names_keep_an_extension_that_matches_the_content(app: Flask, auth: Auth, sent: str, stored: str) -> None:
    auth.login()
    slug = auth.project()
    png = _png(np.zeros((8, 8, 3), np.uint8))
    response = auth.post(f"/panel/api/projects/{slug}/images", data={"files": [(io.BytesIO(png), sent)]}, content_type="multipart/form-data")
    assert response.status_code == 201  # type: ignore[attr-defined]
    (meta,) = _store(app).list_images(slug)
    assert meta.file_name == stored and meta.original.endswith("/original.png")
    assert _store(app).read(meta.original) == png


def test_thumbnail_names_show_where_the_names_differ(auth: Auth, client: FlaskClient) -> None:
    import re

    auth.login()
    slug = auth.project()
    names = ("blood-smear-slide-7-field-0001.png", "blood-smear-slide-7-field-0002.png")
    files = [(io.BytesIO(_png(np.full((30, 40, 3), 90 + i, np.uint8))), n) for i, n in enumerate(names)]
    assert auth.post(f"/panel/api/projects/{slug}/images", data={"files": files}, content_type="multipart/form-data").status_code == 201  # type: ignore[attr-defined]
    page = client.get("/panel/capture/").get_data(as_text=True)
    shown = re.findall(r'<span class="name muted">([^<]*)</span>', page)
    assert len(shown) == 2 and len(set(shown)) == 2, shown
    assert {s[-8:] for s in shown} == {"0001.png", "0002.png"} and all(len(s) <= 24 for s in shown)
