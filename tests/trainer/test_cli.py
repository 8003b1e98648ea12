"""`python -m trainer` as a user runs it: clear errors, nothing half-written, working sub-commands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from trainer.bundle import read_card

from .conftest import SMALL_SCENE

ROOT = Path(__file__).resolve().parents[2]


def run_trainer(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainer", *args], capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, **(env or {})}, timeout=600,
    )


def _without_first_image(source: Path, target: Path) -> Path:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        images = sorted(n for n in src.namelist() if n.startswith("images/"))
        for name in src.namelist():
            if name != images[0]:
                dst.writestr(name, src.read(name))
    return target


def test_bad_package_gives_one_clear_error_and_leaves_nothing(small_package: Path, tmp_path: Path) -> None:
    bad = _without_first_image(small_package, tmp_path / "bad.zip")
    out = tmp_path / "out"
    result = run_trainer("train", str(bad), "--out", str(out))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "missing from images/" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.zip"]  # no staging folder either


def test_missing_package_and_bad_options(tmp_path: Path) -> None:
    result = run_trainer("train", str(tmp_path / "nope.zip"), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "no such dataset package" in result.stderr
    result = run_trainer("train", str(tmp_path / "nope.zip"), "--out", str(tmp_path / "o"), "--crop", "100")
    assert result.returncode == 2 and "multiple of 32" in result.stderr and "Traceback" not in result.stderr


def test_existing_bundle_is_not_overwritten_without_force(trained_bundle: Path, small_package: Path) -> None:
    before = (trained_bundle / "model.json").read_bytes()
    result = run_trainer("train", str(small_package), "--out", str(trained_bundle))
    assert result.returncode == 2 and "--force" in result.stderr
    assert (trained_bundle / "model.json").read_bytes() == before


def test_evaluate_scores_the_onnx_model_on_a_held_out_package(trained_bundle: Path, tmp_path: Path) -> None:
    from device.datasets.package import write_synthetic_package

    bundle = tmp_path / "bundle"
    shutil.copytree(trained_bundle, bundle)
    held_out = tmp_path / "held.zip"
    write_synthetic_package(held_out, count=6, seed=123, **SMALL_SCENE)  # type: ignore[arg-type]
    result = run_trainer("evaluate", str(bundle), str(held_out), "--record", "held_out")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["val_images"] == 6 and 0.2 < scores["map50"] <= 1.0
    assert read_card(bundle).metrics["held_out"]["map50"] == pytest.approx(scores["map50"])
    assert "## held_out: held.zip" in (bundle / "report.md").read_text()


def test_export_rebuilds_the_onnx_of_an_existing_bundle(trained_bundle: Path, train_package: Path, tmp_path: Path) -> None:
    from device.models.bundle import load_bundle

    bundle = tmp_path / "bundle"
    shutil.copytree(trained_bundle, bundle)
    (bundle / "model.onnx").write_bytes(b"stale")
    result = run_trainer("export", str(bundle), "--package", str(train_package))
    assert result.returncode == 0, result.stderr
    assert "max abs diff" in result.stdout
    assert load_bundle(bundle).onnx_path.stat().st_size > 100_000
    assert read_card(bundle).metrics["onnx_parity"]["max_abs_diff"] < 1e-2


def test_build_engine_without_tensorrt_says_what_to_do(trained_bundle: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here: tests/trainer/test_engines.py builds real engines")
    result = run_trainer("build-engine", str(trained_bundle))
    assert result.returncode == 2 and "TensorRT is not installed" in result.stderr


def _bundle_with_thresholds(trained_bundle: Path, tmp_path: Path, thresholds: dict[str, float]) -> Path:
    from trainer.bundle import write_card

    bundle = tmp_path / "bundle"
    shutil.copytree(trained_bundle, bundle)
    card = read_card(bundle)
    card.class_thresholds = thresholds
    write_card(bundle, card)
    return bundle


def test_evaluate_uses_the_bundles_thresholds_unless_asked_to_refit(trained_bundle: Path, train_package: Path, tmp_path: Path) -> None:
    strict = {"cell": 0.99, "crystal": 0.99, "debris": 0.99}  # finds (almost) nothing: every count is off
    bundle = _bundle_with_thresholds(trained_bundle, tmp_path, strict)
    result = run_trainer("evaluate", str(bundle), str(train_package))
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["class_thresholds"] == strict and "bundle" in scores["thresholds_from"]
    assert "thresholds: the bundle's" in result.stderr
    assert scores["count_error"]["per_class"]["cell"]["bias"] < -3
    refit = run_trainer("evaluate", str(bundle), str(train_package), "--refit-thresholds")
    assert refit.returncode == 0, refit.stderr
    refitted = json.loads(refit.stdout)
    assert "fitted on these images" in refitted["thresholds_from"] and "fitted on these images" in refit.stderr
    assert refitted["count_error"]["total_mae"] < scores["count_error"]["total_mae"]


def test_evaluate_does_not_load_tensorflow(trained_bundle: Path, train_package: Path) -> None:
    code = ("import sys, contextlib, io\nfrom trainer.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()): rc = main(['evaluate', {str(trained_bundle)!r}, {str(train_package)!r}])\n"
            "print(rc, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.stdout.split() == ["0", "False", "False"], result.stderr


def test_train_without_the_trainer_packages_says_what_to_run(small_package: Path, tmp_path: Path) -> None:
    """After `make demo` (device-only environment) the README's train command must say `make setup`."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class NoTensorFlow:  # a device-only environment: these packages are simply not there\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'keras'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoTensorFlow())\n"
        "from trainer.cli import main\n"
        f"raise SystemExit(main(['train', {str(small_package)!r}, '--out', {str(tmp_path / 'out')!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "make setup" in done.stderr and "Traceback" not in done.stderr
