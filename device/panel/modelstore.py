"""Model bundles kept by the panel: validated on upload, stored as zips, unpacked on demand.

A bundle is accepted only if its manifest validates, it unpacks within its size budget
(device/models/bundle.py), model.onnx loads in ONNX Runtime and its classes equal the project's, so
switching to it later cannot fail for reasons known at upload. Deleting a model removes its
unpacked copy too, and a restart removes unpacked panel bundles no model refers to.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from device.models.bundle import BundleError, ModelCard, load_bundle, remove_extracted
from device.panel.store import PanelError, Project
from device.storage import Storage

_PANEL_ID = re.compile(r"[0-9a-f]{12}")


class StoredModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    file_name: str
    size: int
    card: ModelCard
    onnx_sha256: str | None = None  # what the model is: two uploads of one model share it


def hide_paths(message: str, folder: Path) -> str:
    """A bundle error without the folder it was unpacked into: users know their zip, not our disk.
    '<folder>/.../model.onnx: ...' -> 'model.onnx: ...'; any other mention -> '(upload)'."""
    for root in {str(folder.resolve()), str(folder)}:
        message = re.sub(re.escape(root) + r"[^\s:'\"]*?/(?=model\.json|model\.onnx|engines/)", "", message)
        message = re.sub(re.escape(root) + r"[^\s:'\"]*", "(upload)", message)
    return message


def _check_runs(path: Path, cache_dir: Path) -> None:
    """What the device itself checks before switching, done at upload: model.onnx loads, its input
    shape is the one model.json declares, and a test frame's outputs decode in output.format."""
    from device.inference.detector import load_detector

    load_detector(path, "onnx", cache_dir)


class ModelStore:
    """Bundles per project under projects/<slug>/models/<id>/{bundle.zip,model.json}."""

    def __init__(self, storage: Storage, cache_dir: Path, bundles_dir: Path | None = None) -> None:
        self.storage = storage
        self.cache_dir = cache_dir
        self.bundles_dir = bundles_dir  # where the runtime unpacks bundles (<data_dir>/bundles)

    def add(self, project: Project, data: bytes, file_name: str) -> StoredModel:
        """Validate the uploaded zip fully; raises PanelError and stores nothing when it is bad."""
        if not data.startswith(b"PK"):
            raise PanelError(f"{file_name}: not a zip file: upload the bundle zip the trainer wrote")
        model_id = hashlib.sha256(data).hexdigest()[:12]
        with tempfile.TemporaryDirectory(prefix="upload-", dir=self._tmp()) as tmp:
            path = Path(tmp) / "bundle.zip"
            path.write_bytes(data)
            try:
                bundle = load_bundle(path, Path(tmp) / "unpacked")
                _check_runs(path, Path(tmp) / "check")
                fingerprint = bundle.fingerprint()
            except BundleError as exc:
                raise PanelError(f"{file_name}: {hide_paths(str(exc), Path(tmp))}") from exc
        card = bundle.card
        if card.classes != project.class_names:
            raise PanelError(
                f"{file_name}: the model knows classes {card.classes} but project '{project.name}' has "
                f"{project.class_names}: train it on this project's dataset or fix the project's classes"
            )
        same = self.find(project, card.label)
        if same is not None:
            if same.onnx_sha256 in (fingerprint, None) and same.card == card:
                return same  # the same model again (re-zipped, or uploaded twice): one row
            raise PanelError(
                f"{file_name}: this project already has a different model called {card.label} "
                f"(uploaded as {same.file_name}): give the new bundle another version, or delete the old one first"
            )
        stored = StoredModel(id=model_id, file_name=Path(file_name).name, size=len(data), card=card, onnx_sha256=fingerprint)
        prefix = f"projects/{project.slug}/models/{model_id}"
        self.storage.put(f"{prefix}/bundle.zip", data, "application/zip")
        self.storage.put_json(f"{prefix}/model.json", stored.model_dump(mode="json"))
        return stored

    def list(self, project: Project) -> list[StoredModel]:
        keys = [k for k in self.storage.list(f"projects/{project.slug}/models/") if k.endswith("/model.json")]
        models = [StoredModel.model_validate(self.storage.get_json(k)) for k in keys]
        return sorted(models, key=lambda m: m.card.created, reverse=True)

    def find(self, project: Project, label: str) -> StoredModel | None:
        """The stored model called name:version, if any (labels are unique per project)."""
        return next((m for m in self.list(project) if m.card.label == label), None)

    def running_id(self, project: Project, running: ModelCard | None) -> str | None:
        """Which stored row the device runs: the whole card must match, not just the label."""
        if running is None:
            return None
        return next((m.id for m in self.list(project) if m.card == running), None)

    def get(self, project: Project, model_id: str) -> StoredModel:
        if not re.fullmatch(r"[0-9a-f]{12}", model_id):
            raise PanelError(f"model '{model_id[:60]}' is not in project '{project.name}' (deleted?): reload the page")
        try:
            return StoredModel.model_validate(self.storage.get_json(f"projects/{project.slug}/models/{model_id}/model.json"))
        except KeyError:
            raise PanelError(f"model '{model_id}' is not in project '{project.name}' (deleted?): reload the page") from None

    def local_zip(self, project: Project, model_id: str) -> Path:
        """The bundle zip on local disk (copied from the store once), for the runtime to load."""
        self.get(project, model_id)
        target = self.cache_dir / "models" / project.slug / f"{model_id}.zip"
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            partial.write_bytes(self.storage.get(f"projects/{project.slug}/models/{model_id}/bundle.zip"))
            partial.replace(target)
        return target

    def delete(self, project: Project, model_id: str) -> None:
        """Remove the stored bundle, its local zip and its unpacked copy: deleting frees the disk."""
        self.storage.delete_prefix(f"projects/{project.slug}/models/{model_id}/")
        cached = self.cache_dir / "models" / project.slug / f"{model_id}.zip"
        cached.unlink(missing_ok=True)
        if self.bundles_dir is not None:
            remove_extracted(self.bundles_dir, model_id)

    def prune(self, projects: Iterable[Project]) -> int:
        """Remove local zips and unpacked bundles of panel models that no project has any more.

        Only names the panel makes (12 hex digits) are touched: bundles given on the command line or
        by the fleet are not the panel's to delete. Returns how many folders and files went.
        """
        known = {m.id for p in projects for m in self.list(p)}
        removed = 0
        for zip_path in (self.cache_dir / "models").glob("*/*.zip"):
            if _PANEL_ID.fullmatch(zip_path.stem) and zip_path.stem not in known:
                zip_path.unlink(missing_ok=True)
                removed += 1
        if self.bundles_dir is not None and self.bundles_dir.is_dir():
            stems = {p.name.rsplit("-", 1)[0] for p in self.bundles_dir.iterdir() if p.is_dir()}
            for stem in stems:
                if _PANEL_ID.fullmatch(stem) and stem not in known:
                    removed += remove_extracted(self.bundles_dir, stem)
        return removed

    def _tmp(self) -> Path:
        path = self.cache_dir / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path


