"""On a machine without a GPU the trainer says "training on CPU" once, and TensorFlow's CUDA
start-up errors (cuInit ... 303) do not reach the user."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.accelerator import nvidia_gpu_present

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(nvidia_gpu_present(), reason="this machine has an NVIDIA GPU: the message names it instead")
def test_cpu_training_says_so_once_and_nothing_else() -> None:
    code = ("from trainer.accelerator import load_tensorflow\nload_tensorflow()\nload_tensorflow()\n"
            "import tensorflow as tf\nprint(float(tf.reduce_sum(tf.ones(3))))")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "3.0"
    assert result.stderr == "training on CPU\n"


def test_hidden_devices_count_as_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert not nvidia_gpu_present()
