import os
import shutil
from pathlib import Path

from device.config import load_config
from device.reload import ModelReloader
from device.runtime import Runtime


def _write(path: Path, text: str, bump: float) -> None:
    path.write_text(text)
    os.utime(path, (bump, bump))  # distinct mtimes even on coarse-clock file systems


def test_model_changes_in_the_config_file_apply_live(running: Runtime, peak_bundle: Path, peak_bundle_v2: Path, tmp_path: Path) -> None:
    file = tmp_path / "device.yaml"
    _write(file, f"model: {peak_bundle}\n", 1000)
    reloader = ModelReloader(running, lambda: load_config(file, environ={}), file)
    assert not reloader.check_once()  # nothing changed yet
    _write(file, f"model: {peak_bundle_v2}\n", 2000)
    assert reloader.check_once() and running.model_card().version == "2.0.0"  # type: ignore[union-attr]
    _write(file, f"model: {tmp_path / 'missing'}\n", 3000)
    assert not reloader.check_once() and running.model_card().version == "2.0.0"  # type: ignore[union-attr]
    _write(file, "model: [not, a, path\n", 4000)
    assert not reloader.check_once() and running.model_card().version == "2.0.0"  # type: ignore[union-attr]


def test_bundle_replaced_in_place_is_reloaded(running: Runtime, peak_bundle: Path, peak_bundle_v2: Path, tmp_path: Path) -> None:
    live = tmp_path / "current"
    shutil.copytree(peak_bundle, live)
    running.switch_model(live)
    reloader = ModelReloader(running, lambda: load_config(environ={}, cli={"model": str(live)}), None)
    shutil.copy(peak_bundle_v2 / "model.json", live / "model.json")
    os.utime(live / "model.json", (5000, 5000))
    assert reloader.check_once() and running.model_card().name == "peaks-b"  # type: ignore[union-attr]
