"""Loading TensorFlow quietly and saying once where training runs (CPU or which GPU).

On a machine without an NVIDIA GPU, TensorFlow's start-up prints lines such as "failed call to
cuInit: ... UNKNOWN ERROR (303)" that read like a failure although nothing is wrong. Some are
written by absl before its logging is configured, so no environment variable hides them: the
import runs with stderr pointed at /dev/null, and the C++ log level is raised to errors-only-fatal
where there is no GPU to report on. Python exceptions still surface after stderr is restored.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

_GPU_MARKERS = ("/dev/nvidia0", "/dev/nvhost-ctrl-gpu", "/dev/dxg")


def nvidia_gpu_present() -> bool:
    """A cheap look for an NVIDIA GPU (desktop, Jetson or WSL) before TensorFlow is imported."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return any(Path(m).exists() for m in _GPU_MARKERS) or (gpus.is_dir() and any(gpus.iterdir()))


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_tensorflow(announce: bool = True) -> str:
    """Import TensorFlow without its start-up noise; returns (and prints once) where it trains."""
    if "tensorflow" in sys.modules:
        return _where(sys.modules["tensorflow"])
    gpu = nvidia_gpu_present()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if gpu else "3")
    with _stderr_silenced():
        import tensorflow as tf

        where = _where(tf)
    if announce:
        print(where, file=sys.stderr, flush=True)
    return where


def _where(tf: object) -> str:
    gpus = tf.config.list_physical_devices("GPU")  # type: ignore[attr-defined]
    if gpus:
        return f"training on GPU ({', '.join(g.name for g in gpus)})"
    return "training on CPU"


def training_on_gpu() -> bool:
    """True where TensorFlow (once loaded) trains on a GPU: the plan then budgets more steps."""
    tf = sys.modules.get("tensorflow")
    return bool(tf is not None and tf.config.list_physical_devices("GPU"))
