"""Models page: validated uploads, switching the running model without restart, delete."""

from __future__ import annotations

import html
import io
import json
import zipfile
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from device.panel.store import Project
from tests.device.panel.conftest import Auth
from tests.device.panel.helpers import SyntheticRuntime, bundle_zip, card, tiny_onnx


def _project(app: Flask, slug: str) -> Project:
    project: Project = app.extensions["scopehive.panel"].projects.project(slug)
    return project


def _upload(auth: Auth, data: bytes, name: str = "bundle.zip") -> str:
    response = auth.post("/panel/models/", data={"bundle": (io.BytesIO(data), name)}, content_type="multipart/form-data", follow_redirects=True)
    return html.unescape(response.data.decode())  # type: ignore[attr-defined]


def test_upload_list_switch_delete(app: Flask, auth: Auth, client: FlaskClient, runtime: SyntheticRuntime, tmp_path: Path) -> None:
    auth.login()
    slug = auth.project()
    assert "Model tiny:1 added" in _upload(auth, bundle_zip(tmp_path / "a.zip").read_bytes())
    assert "Model tiny:2 added" in _upload(auth, bundle_zip(tmp_path / "b.zip", version="2").read_bytes())
    models = app.extensions["scopehive.panel"].models.list(_project(app, slug))
    assert sorted(m.card.label for m in models) == ["tiny:1", "tiny:2"]
    first = next(m for m in models if m.card.version == "1")
    page = auth.post(f"/panel/models/{first.id}/activate", follow_redirects=True).data.decode()  # type: ignore[attr-defined]
    assert "The device now runs tiny:1" in page and runtime.model_card().label == "tiny:1"  # type: ignore[union-attr]
    refused = auth.post(f"/panel/models/{first.id}/delete", follow_redirects=True).data.decode()  # type: ignore[attr-defined]
    assert "is running now" in refused
    second = next(m for m in models if m.card.version == "2")
    auth.post(f"/panel/models/{second.id}/delete")
    assert [m.card.label for m in app.extensions["scopehive.panel"].models.list(_project(app, slug))] == ["tiny:1"]


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _onnx(tmp_path: Path) -> bytes:
    tiny_onnx(tmp_path / "m.onnx")
    return (tmp_path / "m.onnx").read_bytes()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("not a zip", "not a zip file"),
        ("no manifest", "model.json is missing"),
        ("bad manifest", "model.json is invalid"),
        ("broken onnx", "upload.zip: model.onnx: ONNX Runtime cannot load the model"),
        ("other classes", "the model knows classes ['bee', 'wasp']"),
        ("zip slip", "would escape its folder"),
    ],
)
def test_bad_bundles_are_refused_and_change_nothing(app: Flask, auth: Auth, tmp_path: Path, kind: str, message: str) -> None:
    auth.login()
    slug = auth.project()
    good_card = json.dumps(card()).encode()
    data = {
        "not a zip": b"MZ this is an exe",
        "no manifest": _zip({"model.onnx": _onnx(tmp_path)}),
        "bad manifest": _zip({"model.json": b'{"format": "scopehive-model"}', "model.onnx": _onnx(tmp_path)}),
        "broken onnx": _zip({"model.json": good_card, "model.onnx": b"garbage"}),
        "other classes": _zip({"model.json": json.dumps(card(classes=["bee", "wasp"])).encode(), "model.onnx": _onnx(tmp_path)}),
        "zip slip": _zip({"model.json": good_card, "model.onnx": _onnx(tmp_path), "../evil.txt": b"x"}),
    }[kind]
    page = _upload(auth, data, "upload.zip")
    assert "/tmp" not in page and "cache" not in page and "upload-" not in page, "no internal folder in a message"
    assert "Model not added: upload.zip" in page and message in page
    assert app.extensions["scopehive.panel"].models.list(_project(app, slug)) == []


def test_switch_failure_keeps_the_old_model(app: Flask, auth: Auth, runtime: SyntheticRuntime, tmp_path: Path) -> None:
    auth.login()
    slug = auth.project()
    _upload(auth, bundle_zip(tmp_path / "a.zip").read_bytes())
    (stored,) = app.extensions["scopehive.panel"].models.list(_project(app, slug))
    auth.post(f"/panel/models/{stored.id}/activate")
    cached = app.extensions["scopehive.panel"].models.local_zip(_project(app, slug), stored.id)
    cached.write_bytes(b"corrupted on disk")  # the device's copy went bad after upload
    page = auth.post(f"/panel/models/{stored.id}/activate", follow_redirects=True).data.decode()  # type: ignore[attr-defined]
    assert "The device keeps its current model" in page
    assert runtime.model_card().label == "tiny:1"  # type: ignore[union-attr]


def _tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def test_a_bundle_zip_bomb_is_refused_at_upload_and_writes_nothing_lasting(app: Flask, auth: Auth, tmp_path: Path) -> None:
    from tests.device.zips import bomb_zip

    auth.login()
    slug = auth.project()
    files = {"model.json": json.dumps(card()).encode(), "model.onnx": _onnx(tmp_path)}
    bomb = bomb_zip({"engines/huge.engine": 700 << 20}, files)  # 0.7 MB on the wire, 700 MB inflated
    assert len(bomb) < 1 << 20
    page = _upload(auth, bomb, "bomb.zip")
    assert "Model not added: bomb.zip" in page and "unpacks to more than 512 MB" in page
    assert app.extensions["scopehive.panel"].models.list(_project(app, slug)) == []
    data_dir = app.extensions["scopehive.panel"].data_dir
    assert _tree_size(data_dir / "cache") == 0 and _tree_size(data_dir.parent / "bundles") == 0


def test_a_bundle_whose_model_json_lies_about_its_input_is_refused_at_upload(app: Flask, auth: Auth, tmp_path: Path) -> None:
    auth.login()
    slug = auth.project()
    lying = card(size=64)  # model.onnx takes 32x32
    page = _upload(auth, _zip({"model.json": json.dumps(lying).encode(), "model.onnx": _onnx(tmp_path)}), "liar.zip")
    assert "Model not added: liar.zip" in page and "input says 64x64 NHWC, but model.onnx expects [1, 32, 32, 3]" in page
    assert app.extensions["scopehive.panel"].models.list(_project(app, slug)) == []


def test_deleting_a_model_frees_its_unpacked_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.device.panel.conftest import PASSWORD, make_app

    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
    data = tmp_path / "data"
    runtime = SyntheticRuntime(data)  # unpacks into <data_dir>/bundles, as the device does
    app = make_app(data, runtime)
    bundles = data / "bundles"
    with app.test_client() as client:
        auth = Auth(client)
        auth.login()
        slug = auth.project()
        _upload(auth, bundle_zip(tmp_path / "a.zip").read_bytes())
        _upload(auth, bundle_zip(tmp_path / "b.zip", version="2").read_bytes())
        first, second = sorted(app.extensions["scopehive.panel"].models.list(_project(app, slug)), key=lambda m: m.card.version)
        auth.post(f"/panel/models/{first.id}/activate")
        auth.post(f"/panel/models/{second.id}/activate")
        assert sorted(p.name.split("-")[0] for p in bundles.iterdir()) == sorted([first.id, second.id])
        auth.post(f"/panel/models/{first.id}/delete")
        assert [p.name.split("-")[0] for p in bundles.iterdir()] == [second.id]
        assert not (data / "panel" / "cache" / "models" / slug / f"{first.id}.zip").exists()
    orphan, foreign = bundles / "0123456789ab-0123456789abcdef", bundles / "demo-0123456789abcdef"
    for folder in (orphan, foreign):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"x" * 1000)
    make_app(data, runtime)  # a restart removes unpacked bundles no panel model refers to
    assert not orphan.exists() and foreign.exists() and any(p.name.startswith(second.id) for p in bundles.iterdir())


def _rezip(path: Path, out: Path) -> bytes:
    """The same bundle zipped again (other entry order and dates): other bytes, same model."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in reversed(source.namelist()):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 2, 3, 4, 5))
            target.writestr(info, source.read(name))
    return out.read_bytes()


def test_the_same_model_twice_is_one_row_and_only_the_running_row_is_running(
    app: Flask, auth: Auth, client: FlaskClient, runtime: SyntheticRuntime, tmp_path: Path
) -> None:
    auth.login()
    slug = auth.project()
    first = bundle_zip(tmp_path / "a.zip")
    _upload(auth, first.read_bytes())
    stored = app.extensions["scopehive.panel"].models.list(_project(app, slug))[0]
    auth.post(f"/panel/models/{stored.id}/activate")
    again = _upload(auth, _rezip(first, tmp_path / "again.zip"), "again.zip")
    assert "tiny:1 is already here (uploaded as bundle.zip): nothing was added." in again
    assert again.count('class="model-row') == 1 and again.count('class="badge">running<') == 1
    card_data = json.loads(zipfile.ZipFile(first).read("model.json"))
    tiny_onnx(tmp_path / "wide.onnx", size=48)  # same name and version, another model
    different = _zip({"model.json": json.dumps({**card_data, "input": {"width": 48, "height": 48, "layout": "NHWC"}}).encode(),
                      "model.onnx": (tmp_path / "wide.onnx").read_bytes()})
    refused = _upload(auth, different, "different.zip")
    assert "already has a different model called tiny:1" in refused and refused.count('class="model-row') == 1
    page = client.get("/panel/models/").data.decode()
    assert "data-confirm=\"Delete model" not in page, "the running model offers no Delete"


def test_upload_checks_the_input_shape_and_output_format(app: Flask, auth: Auth, tmp_path: Path) -> None:
    auth.login()
    auth.project()
    tiny_onnx(tmp_path / "m.onnx", size=32)
    wrong_shape = _zip({"model.json": json.dumps(card(size=64)).encode(), "model.onnx": (tmp_path / "m.onnx").read_bytes()})
    page = _upload(auth, wrong_shape, "shape.zip")
    assert "Model not added: shape.zip" in page and "input says 64x64 NHWC, but model.onnx expects" in page
    yolo = _zip({"model.json": json.dumps({**card(), "output": {"format": "yolov8"}}).encode(), "model.onnx": (tmp_path / "m.onnx").read_bytes()})
    page = _upload(auth, yolo, "yolo.zip")
    assert "Model not added: yolo.zip" in page and "outputs do not match output.format 'yolov8'" in page
