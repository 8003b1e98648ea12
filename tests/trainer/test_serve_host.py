"""`python -m trainer serve` listens on loopback unless told otherwise (`--host`): a hive server has
no login, so opening it to the network must be a choice (docs/hive.md), not the default."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import requests

from device.hive.names import triton_model_name
from device.models.bundle import load_bundle
from tests.device.bundles import peak_detector_bundle
from tests.device.hive.server import HiveServer, hive_python
from trainer import cli


def _served_ports(monkeypatch: pytest.MonkeyPatch, bundle: Path, *extra: str) -> Any:
    import trainer.hive.serve as serve_module

    seen: list[Any] = []
    monkeypatch.setattr(serve_module, "serve", lambda bundles, ports: seen.append(ports))
    assert cli.main(["serve", str(bundle), *extra]) == 0
    (ports,) = seen
    return ports


def test_serve_binds_loopback_unless_given_a_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = peak_detector_bundle(tmp_path / "peaks")
    assert _served_ports(monkeypatch, bundle).host == "127.0.0.1"
    opened = _served_ports(monkeypatch, bundle, "--host", "0.0.0.0", "--http-port", "9000")
    assert opened.host == "0.0.0.0" and opened.http == 9000


def _lan_address() -> str | None:
    """This machine's address on its network (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def test_a_real_hive_server_answers_on_loopback_only(tmp_path: Path) -> None:
    hive_python()  # skipped without the hive environment (failed under CI)
    lan = _lan_address()
    if lan is None:
        pytest.skip("this machine has no network address besides loopback")
    bundle = peak_detector_bundle(tmp_path / "peaks")
    server = HiveServer([bundle], tmp_path / "hive.log").start([triton_model_name(load_bundle(bundle).card)])
    try:
        assert requests.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 200
        assert all(_reachable("127.0.0.1", port) for port in server.ports)
        assert not any(_reachable(lan, port) for port in server.ports), f"reachable on {lan}: {server.ports}"
    finally:
        server.kill()
