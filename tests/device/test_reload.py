import os
import shutil
from pathlib import Path

from device.config import load_config
from device.reload import ModelReloader
from device.runtime import Runtime
from tests.device.runtime_helpers import facade


def _write(path: Path, text: str, bump: float) -> None:
    path.write_text(text)
    os.utime(path, (bump, bump))  # distinct mtimes even on coarse-clock file systems


def test_model_changes_in_the_config_file_apply_live(running: Runtime, peak_bundle: Path, peak_bundle_v2: Path, tmp_path: Path) -> None:
    file = tmp_path / "device.yaml"
    _write(file, f"model: {peak_bundle}\n", 1000)
    reloader = ModelReloader(running.parts.feed, lambda: load_config(file, environ={}), running.parts.config, file)
    assert not reloader.check_once()  # nothing changed yet
    _write(file, f"model: {peak_bundle_v2}\n", 2000)
    assert reloader.check_once() and facade(running).model_card().version == "2.0.0"  # type: ignore[union-attr]
    _write(file, f"model: {tmp_path / 'missing'}\n", 3000)
    assert not reloader.check_once() and facade(running).model_card().version == "2.0.0"  # type: ignore[union-attr]
    _write(file, "model: [not, a, path\n", 4000)
    assert not reloader.check_once() and facade(running).model_card().version == "2.0.0"  # type: ignore[union-attr]


def test_bundle_replaced_in_place_is_reloaded(running: Runtime, peak_bundle: Path, peak_bundle_v2: Path, tmp_path: Path) -> None:
    live = tmp_path / "current"
    shutil.copytree(peak_bundle, live)
    running.parts.feed.switch_model(live)
    reloader = ModelReloader(running.parts.feed, lambda: load_config(environ={}, cli={"model": str(live)}), running.parts.config, None)
    shutil.copy(peak_bundle_v2 / "model.json", live / "model.json")
    os.utime(live / "model.json", (5000, 5000))
    assert reloader.check_once() and facade(running).model_card().name == "peaks-b"  # type: ignore[union-attr]


def test_models_beside_the_main_one_follow_the_config_file(running: Runtime, peak_bundle: Path, peak_bundle_v2: Path, tmp_path: Path) -> None:
    file = tmp_path / "device.yaml"
    _write(file, f"model: {peak_bundle}\n", 1000)
    reloader = ModelReloader(running.parts.feed, lambda: load_config(file, environ={}), running.parts.config, file)
    _write(file, f"model: {peak_bundle}\nmodels:\n  - {{name: b, bundle: {peak_bundle_v2}, every: 2}}\n"
                 f"  - {{name: bad, bundle: {tmp_path / 'missing'}}}\n", 2000)
    reloader.check_once()
    assert [p.name for p in running.parts.feed.pipelines] == ["main", "b"]  # the bad one is refused, the good one runs
    assert running.parts.feed.pipeline("b").slot.detector.card.name == "peaks-b" and running.parts.feed.pipeline("b").options.every == 2  # type: ignore[union-attr]
    _write(file, f"model: {peak_bundle}\nmodels:\n  - {{name: b, bundle: {peak_bundle}, every: 5, overlay: false}}\n", 3000)
    reloader.check_once()
    b = running.parts.feed.pipeline("b")
    assert b.slot.detector.card.name == "peaks" and (b.options.every, b.options.overlay) == (5, False)  # type: ignore[union-attr]
    _write(file, f"model: {peak_bundle}\n", 4000)
    reloader.check_once()
    assert [p.name for p in running.parts.feed.pipelines] == ["main"] and facade(running).model_card().name == "peaks"  # type: ignore[union-attr]
