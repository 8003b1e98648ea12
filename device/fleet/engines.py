"""Sharing TensorRT engines across devices of the same kind through the object store.

An engine only runs on the TensorRT major.minor and GPU compute capability that built it, and
building one takes minutes on a Jetson Nano. The TensorRT backend caches what it builds as
`<data_dir>/engines/<onnx sha256[:16]>_trt<major.minor>_sm<cc>_fp16.engine`; after a switch the
watcher uploads such an engine to `models/<name>/<version>/engines/` and lists it in
`engines.json`, and the next device with the same TensorRT and GPU downloads it with the bundle.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.storage import Storage

_CACHED = re.compile(r"^(?P<fp>[0-9a-f]{16})_trt(?P<trt>\d+\.\d+)_sm(?P<sm>\d+)_(?P<precision>fp16|fp32|int8)\.engine$")
_SPEC_KEYS = ("file", "tensorrt_version", "compute_capability", "precision")


@dataclass(frozen=True)
class GpuSignature:
    tensorrt_version: str  # major.minor
    compute_capability: str  # e.g. 8.7


def local_gpu() -> GpuSignature | None:
    """This machine's TensorRT version and GPU, or None without TensorRT / CUDA (CPU fallback)."""
    try:
        import pycuda.driver as cuda
        import tensorrt as trt

        cuda.init()
        major, minor = cuda.Device(0).compute_capability()
    except Exception:
        return None
    return GpuSignature(".".join(trt.__version__.split(".")[:2]), f"{major}.{minor}")


def _major_minor(version: str) -> str:
    return ".".join(str(version).split(".")[:2])


def matching_engines(listed: list[dict[str, Any]], gpu: GpuSignature | None) -> list[dict[str, Any]]:
    """The listed engines this GPU can run (none without TensorRT)."""
    if gpu is None:
        return []
    return [
        spec for spec in listed
        if _major_minor(spec.get("tensorrt_version", "")) == gpu.tensorrt_version
        and str(spec.get("compute_capability")) == gpu.compute_capability
    ]


def cached_engines(cache_dir: Path, fingerprint: str) -> list[tuple[Path, dict[str, Any]]]:
    """Engines the TensorRT backend built here for the model whose ONNX has this sha256."""
    found = []
    for path in sorted((cache_dir / "engines").glob(f"{fingerprint[:16]}_trt*.engine")):
        match = _CACHED.match(path.name)
        if not match:
            continue
        sm = match["sm"]
        spec = {
            "file": f"engines/trt{match['trt']}_sm{sm}_{match['precision']}.engine",
            "tensorrt_version": match["trt"],
            "compute_capability": f"{sm[:-1]}.{sm[-1]}",
            "precision": match["precision"],
        }
        found.append((path, spec))
    return found


def upload_engines(store: Storage, prefix: str, cache_dir: Path, fingerprint: str, device_type: str) -> list[str]:
    """Upload engines built here that the store doesn't have yet; returns their store keys."""
    candidates = cached_engines(cache_dir, fingerprint)
    if not candidates:
        return []
    index_key = prefix + "engines.json"
    try:
        index = store.get_json(index_key)
    except KeyError:
        index = {"engines": []}
    known = {spec["file"] for spec in index.get("engines", [])}
    uploaded = []
    for path, spec in candidates:
        if spec["file"] in known:
            continue
        data = path.read_bytes()
        store.put(prefix + spec["file"], data)
        index["engines"].append({**spec, "sha256": hashlib.sha256(data).hexdigest(), "built_on": device_type})
        uploaded.append(prefix + spec["file"])
    if uploaded:
        store.put_json(index_key, index)  # after the engines: a listed engine is always there
    return uploaded


def card_engine_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The keys model.json's `engines` entries allow (the index carries sha256 and more)."""
    return {key: spec[key] for key in _SPEC_KEYS if key in spec}
