"""Hive fixtures: one real Triton server (PyTriton) per module, serving the test peak detector."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from device.hive.names import triton_model_name
from device.models.bundle import load_bundle
from tests.device.hive.server import HiveServer


@pytest.fixture(scope="module")
def hive(peak_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveServer]:
    card = load_bundle(peak_bundle).card
    log = tmp_path_factory.mktemp("hive") / "serve.log"
    server = HiveServer([peak_bundle], log).start([triton_model_name(card), triton_model_name(card, "jpeg")])
    yield server
    server.kill()
