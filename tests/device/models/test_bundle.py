"""Bundle zips are unpacked within a size budget: a bomb is stopped and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.models.bundle import BundleError, load_bundle


def test_a_bundle_bomb_stops_at_its_budget_and_leaves_nothing(tmp_path: Path) -> None:
    from device.models.bundle import bundle_limits
    from tests.device.zips import bomb_zip

    path = tmp_path / "bomb.zip"
    path.write_bytes(bomb_zip({"engines/x.engine": 600 << 20}, {"model.json": b"{}", "model.onnx": b"x"}))
    assert bundle_limits(path.stat().st_size).max_total == 512 << 20
    with pytest.raises(BundleError, match="unpacks to more than 512 MB"):
        load_bundle(path, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []
