"""Publishing a bundle folder into the store layout the devices read (tests only).

trainer/publish.py owns publishing for users; the fleet tests need published bundles before
that module exists, so they use this small writer of the same documented layout:
models/<name>/<version>/<files> and bundle.json (files + sha256) last.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from device.storage import Storage


def publish_folder(store: Storage, folder: Path) -> str:
    card = json.loads((folder / "model.json").read_text())
    prefix = f"models/{card['name']}/{card['version']}/"
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        data = path.read_bytes()
        store.put(prefix + relative, data)
        files[relative] = hashlib.sha256(data).hexdigest()
    store.put_json(prefix + "bundle.json", {"files": files, "name": card["name"], "version": card["version"]})
    return f"{card['name']}:{card['version']}"
