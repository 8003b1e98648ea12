"""Fetching a published bundle from the object store into the data dir, verified, all or nothing.

A bundle is complete once `models/<name>/<version>/bundle.json` exists (the trainer writes it
last); it lists every file with its sha256, so a half-uploaded or corrupted bundle never reaches
the detector. Engines other devices built (`engines.json`) come along when they fit this GPU.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from device.fleet.engines import GpuSignature, card_engine_spec, matching_engines
from device.metrics.points import name_problem
from device.storage import Storage, StorageError


class FetchError(RuntimeError):
    """The assigned bundle could not be fetched; the message names the object and what to do."""


def split_ref(ref: str) -> tuple[str, str]:
    """`name:version` of a balena tag or `fleet.model_ref`. Both parts become folder names and the
    model's tags, so control characters (a newline stops every InfluxDB write) and path parts
    are refused before anything is fetched."""
    name, _, version = ref.partition(":")
    if not name or not version or ":" in version:
        raise FetchError(f"model assignment {ref!r} is not name:version (e.g. synthetic-cells:2026.11.21-1)")
    for part in (name, version):
        problem = name_problem(part)
        if problem:
            raise FetchError(f"model assignment {ref[:80]!r} {problem}")
        if "/" in part or "\\" in part or part in (".", ".."):
            raise FetchError(f"model assignment {ref[:80]!r} contains a path ('/', '\\', '..'): give name:version")
    return name, version


def bundle_prefix(ref: str) -> str:
    name, version = split_ref(ref)
    return f"models/{name}/{version}/"


def _manifest(store: Storage, ref: str) -> dict[str, str]:
    key = bundle_prefix(ref) + "bundle.json"
    try:
        document = store.get_json(key)
    except KeyError:
        raise FetchError(f"{store.describe(key)} is missing: model {ref} is not published (run `python -m trainer publish`)") from None
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, dict) or "model.json" not in files or "model.onnx" not in files:
        raise FetchError(f"{store.describe(key)} does not list model.json and model.onnx: republish the bundle")
    return {str(k): str(v) for k, v in files.items()}


def _download(store: Storage, key: str, target: Path, sha256: str | None) -> None:
    try:
        data = store.get(key)
    except KeyError:
        raise FetchError(f"{store.describe(key)} is listed in bundle.json but missing: republish the bundle") from None
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        raise FetchError(f"{store.describe(key)} does not match its sha256 in bundle.json: republish the bundle")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _add_engines(store: Storage, ref: str, folder: Path, gpu: GpuSignature | None) -> list[str]:
    """Download engines built elsewhere for this exact TensorRT + GPU and list them in model.json."""
    try:
        listed = store.get_json(bundle_prefix(ref) + "engines.json").get("engines", [])
    except KeyError:
        return []
    chosen = matching_engines(listed, gpu)
    if not chosen:
        return []
    card_path = folder / "model.json"
    card = json.loads(card_path.read_text())
    have = {e["file"] for e in card.get("engines", [])}
    for spec in chosen:
        if spec["file"] not in have:
            _download(store, bundle_prefix(ref) + spec["file"], folder / spec["file"], spec.get("sha256"))
            card.setdefault("engines", []).append(card_engine_spec(spec))
    card_path.write_text(json.dumps(card, indent=2))
    return [spec["file"] for spec in chosen]


def fetch_bundle(store: Storage, ref: str, root: Path, gpu: GpuSignature | None = None) -> Path:
    """`models/<name>/<version>/` -> `root/<name>/<version>/`, verified; returns the folder.

    Already fetched bundles are reused. Files land in a temp folder first and are renamed into
    place, so a crash never leaves a half bundle that looks complete.
    """
    name, version = split_ref(ref)
    target = root / name / version
    if (target / "model.json").is_file():
        return target
    files = _manifest(store, ref)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=root))
    try:
        for relative, sha256 in files.items():
            if relative.startswith("/") or ".." in relative.split("/"):
                raise FetchError(f"bundle.json of {ref} lists '{relative}', which escapes the bundle folder")
            _download(store, bundle_prefix(ref) + relative, staging / relative, sha256)
        _add_engines(store, ref, staging, gpu)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.replace(target)
    except StorageError as exc:
        raise FetchError(f"cannot fetch model {ref}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
