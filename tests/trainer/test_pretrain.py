"""Transfer learning without the internet: a weights file the lab brings, and pre-training on
its own unlabelled captures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MobileNetV2 (alpha 0.35) weights that differ from any fresh initialisation."""
    import keras

    from trainer.model import mobilenet_v2

    keras.utils.set_random_seed(123)
    base = mobilenet_v2(0.35)
    rng = np.random.default_rng(5)
    base.set_weights([w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in base.get_weights()])
    path = tmp_path_factory.mktemp("weights") / "lab-backbone.weights.h5"
    base.save_weights(path)
    return path


def test_a_weights_file_the_lab_brings_is_loaded_into_the_detector(weights_file: Path) -> None:
    from trainer.model import ModelSpec, build_raw_model, mobilenet_v2

    reference = mobilenet_v2(0.35)
    reference.load_weights(weights_file)
    raw = build_raw_model(ModelSpec(2, weights=str(weights_file)))
    conv = raw.get_layer("backbone").get_layer("Conv1").get_weights()[0]
    assert np.array_equal(conv, reference.get_layer("Conv1").get_weights()[0])
    fresh = build_raw_model(ModelSpec(2)).get_layer("backbone").get_layer("Conv1").get_weights()[0]
    assert not np.allclose(conv, fresh)


# Keras warns about every layer a wrong-width file cannot fill before it refuses: expected here.
@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")
def test_a_file_that_does_not_fit_is_refused_with_what_fits(weights_file: Path, tmp_path: Path) -> None:
    from trainer.errors import WeightsError
    from trainer.pretrain import check_weights_file

    check_weights_file(str(weights_file), 0.35)
    with pytest.raises(WeightsError, match="width multiplier 0.5"):
        check_weights_file(str(weights_file), 0.5)
    with pytest.raises(WeightsError, match="no such file"):
        check_weights_file(str(tmp_path / "none.weights.h5"), 0.35)


def test_train_refuses_a_bad_weights_file_before_writing_anything(small_package: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "trainer", "train", str(small_package), "--out", str(out), "--weights", str(junk)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 2 and "error: --weights" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_pretraining_on_unlabelled_frames_learns_and_writes_a_usable_file(tmp_path: Path) -> None:
    import cv2

    from device.sources.synthetic_modes import create_scope, mode_config
    from trainer.frames import load_frames
    from trainer.pretrain import PretrainConfig, check_weights_file, pretrain

    scope = create_scope(mode_config("blood", {"seed": 3, "width": 320, "height": 240, "scale": 0.5}))
    captures = tmp_path / "captures" / "day1"
    captures.mkdir(parents=True)
    for i in range(6):
        cv2.imwrite(str(captures / f"frame{i}.png"), scope.read().image)
        scope.new_scene()
    frames = load_frames(tmp_path / "captures")
    assert len(frames) == 6 and frames[0].shape == (240, 320, 3)
    out = tmp_path / "backbone.weights.h5"
    result = pretrain(frames, out, PretrainConfig(steps=30, crop=96, batch_size=4, learning_rate=3e-3), log_every=1000)
    assert result["last_loss"] < 0.8 * result["first_loss"]
    check_weights_file(str(out), 0.35)


def test_pretrain_without_frames_says_what_to_give(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "trainer", "pretrain", str(tmp_path), "--out", str(tmp_path / "w.weights.h5")],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 2 and "no readable images" in result.stderr
