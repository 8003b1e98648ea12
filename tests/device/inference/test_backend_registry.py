"""The backend registry is the one list of backend keys, every factory is called one way, and the
hive backend's local fallback is built by the registry and handed in."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from device.config import DeviceConfig
from device.hive.settings import HiveSettings
from device.inference.backend import (
    BACKENDS,
    LOCAL_BACKENDS,
    BackendContext,
    backend_keys,
    create_backend,
    local_backend_keys,
)
from device.inference.onnx_backend import OnnxBackend
from device.inference.triton_backend import TritonBackend
from device.models.bundle import load_bundle
from tests.device.inference.recording import RecordingBackend

ROOT = Path(__file__).resolve().parents[3]


def test_the_keys_are_the_registrys() -> None:
    assert backend_keys() == ["auto", *sorted(BACKENDS)] and "triton" in BACKENDS
    assert local_backend_keys() == ["auto", *sorted(LOCAL_BACKENDS), "none"] and "triton" not in LOCAL_BACKENDS


def test_the_cli_offers_every_registered_backend() -> None:
    from device.cli import _parser

    for key in backend_keys():
        assert _parser().parse_args(["run", "--backend", key]).backend == key
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "--backend", "cuda"])


@pytest.mark.parametrize(("config", "where"), [
    ({"backend": "tritón"}, "backend"),
    ({"models": [{"name": "b", "bundle": "x", "backend": "cuda"}]}, "models[b].backend"),
    ({"hive": {"local_backend": "triton"}}, "hive.local_backend"),  # a fallback must run on the device
    ({"hive": {"local_backend": "gpu"}}, "hive.local_backend"),
])
def test_the_config_refuses_keys_the_registry_lacks(config: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as refused:
        DeviceConfig.model_validate(config)
    assert where in str(refused.value) and "choose one of auto" in str(refused.value)


def test_the_config_takes_every_registered_key() -> None:
    for key in backend_keys():
        extra = {"hive": {"endpoints": ["http://hive:8000"]}} if key == "triton" else {}
        assert DeviceConfig.model_validate({"backend": key, **extra}).backend == key
    for key in local_backend_keys():
        assert DeviceConfig.model_validate({"hive": {"local_backend": key}}).hive.local_backend == key


def test_an_unknown_key_names_the_known_ones(peak_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="choose one of auto, onnx, opencv, tensorrt, triton"):
        create_backend("cuda", load_bundle(peak_bundle), tmp_path)


def test_the_registry_builds_the_fallback_and_hands_it_in(peak_bundle: Path, tmp_path: Path) -> None:
    settings = HiveSettings(endpoints=["http://127.0.0.1:9"], local_backend="onnx")  # type: ignore[call-arg]
    backend = create_backend("triton", load_bundle(peak_bundle), tmp_path, BackendContext(settings))
    assert isinstance(backend, TritonBackend) and isinstance(backend.local, OnnxBackend)
    backend.close()
    alone = create_backend("triton", load_bundle(peak_bundle), tmp_path, BackendContext(settings.model_copy(update={"local_backend": "none"})))
    assert isinstance(alone, TritonBackend) and alone.local is None
    alone.close()


def test_the_hive_backend_falls_back_on_whatever_it_is_given(peak_bundle: Path, tmp_path: Path) -> None:
    """Injected: any Backend will do, and it gets the very tensor the hive did not answer."""

    fallback = RecordingBackend()
    settings = HiveSettings(endpoints=["http://127.0.0.1:9"])  # type: ignore[call-arg]
    backend = TritonBackend(load_bundle(peak_bundle), tmp_path, BackendContext(settings, fallback=fallback))
    tensor = np.zeros((1, 240, 320, 3), np.float32)
    backend.run(tensor)
    assert fallback.seen and fallback.seen[0] is tensor and backend.last_route == "fallback"
    backend.close()


def test_no_backend_module_builds_another_backend() -> None:
    """The registry alone builds backends: no backend module imports it (no cycle, no hidden branch)."""
    for path in (ROOT / "device" / "inference").glob("*_backend.py"):
        imported = {n.module for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)}
        assert "device.inference.backend" not in imported, path.name
    source = (ROOT / "device" / "inference" / "backend.py").read_text()
    assert '== "triton"' not in source and "if resolved ==" not in source
