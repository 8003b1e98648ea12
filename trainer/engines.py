"""Building TensorRT engines from a bundle's model.onnx (FP16, or INT8 calibrated on real frames).

An engine only runs on the TensorRT major.minor and GPU compute capability that built it, so the
file is keyed by both (engines/trt10.3_sm87_fp16.engine) and listed in model.json `engines`;
the device picks the one matching itself. TensorRT and pycuda exist only on NVIDIA machines
(JetPack, NVIDIA's index), so they are imported here, lazily, with a message saying what to do.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from trainer.bundle import EngineSpec, read_card, write_card

Precision = Literal["fp32", "fp16", "int8"]
_CALIBRATION_BATCH = 4


class EngineError(RuntimeError):
    """No engine could be built; the message says why and what to do."""


def import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise EngineError(
            "TensorRT is not installed here: engines can only be built on a machine with an NVIDIA GPU and "
            "TensorRT (JetPack on a Jetson, or `pip install tensorrt pycuda` from NVIDIA's index). The bundle "
            "works without engines: the device runs model.onnx or builds its own engine."
        ) from exc
    return tensorrt


def engine_file(tensorrt_version: str, compute_capability: str, precision: Precision) -> str:
    """engines/trt{major.minor}_sm{cc}_{precision}.engine, e.g. engines/trt10.3_sm87_fp16.engine."""
    major_minor = ".".join(tensorrt_version.split(".")[:2])
    return f"engines/trt{major_minor}_sm{compute_capability.replace('.', '')}_{precision}.engine"


def compute_capability() -> str:
    """Compute capability of GPU 0 as 'major.minor' (pycuda, else nvidia-smi)."""
    try:
        import pycuda.autoinit  # noqa: F401
        import pycuda.driver as cuda

        major, minor = cuda.Device(0).compute_capability()
        return f"{major}.{minor}"
    except ImportError:
        pass
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"], capture_output=True, text=True, timeout=20, check=True
        )
        return out.stdout.strip().splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError) as exc:
        raise EngineError(f"cannot read the GPU's compute capability ({exc}): is an NVIDIA GPU and driver present?") from exc


def _calibrator(trt: Any, frames: np.ndarray, cache: Path) -> Any:
    """An entropy calibrator fed with normalised training frames (pycuda moves them to the GPU)."""
    try:
        import pycuda.autoinit  # noqa: F401
        import pycuda.driver as cuda
    except ImportError as exc:
        raise EngineError("INT8 calibration needs pycuda (`pip install pycuda`); build fp16 instead") from exc

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.frames = np.ascontiguousarray(frames, np.float32)
            self.index = 0
            self.device = cuda.mem_alloc(self.frames[:_CALIBRATION_BATCH].nbytes)

        def get_batch_size(self) -> int:
            return _CALIBRATION_BATCH

        def get_batch(self, names: Sequence[str]) -> list[int] | None:
            if self.index + _CALIBRATION_BATCH > len(self.frames):
                return None
            cuda.memcpy_htod(self.device, np.ascontiguousarray(self.frames[self.index : self.index + _CALIBRATION_BATCH]))
            self.index += _CALIBRATION_BATCH
            return [int(self.device)]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: bytes) -> None:
            cache.write_bytes(bytes(data))

    return EntropyCalibrator()


def build_engine(onnx_path: Path, precision: Precision, frames: np.ndarray | None = None, workspace_mb: int = 1024) -> bytes:
    """Serialized engine for this GPU; `frames` [N, h, w, 3] (N >= 4) are needed for int8."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0 if int(trt.__version__.split(".")[0]) >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    image = network.get_input(0)
    shape = tuple(image.shape)[1:]
    profile = builder.create_optimization_profile()
    profile.set_shape(image.name, (1, *shape), (1, *shape), (_CALIBRATION_BATCH, *shape))
    config.add_optimization_profile(profile)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        if frames is None or len(frames) < _CALIBRATION_BATCH:
            raise EngineError(f"INT8 needs at least {_CALIBRATION_BATCH} calibration frames: pass --package with training images")
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _calibrator(trt, frames, onnx_path.with_suffix(".calib"))
        config.set_calibration_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"TensorRT failed to build a {precision} engine from {onnx_path} (see the log above)")
    return bytes(serialized)


def add_engine(bundle_dir: str | os.PathLike[str], precision: Precision, frames: np.ndarray | None = None) -> EngineSpec:
    """Build an engine for this machine into the bundle's engines/ and record it in model.json."""
    bundle = Path(bundle_dir)
    card = read_card(bundle)
    trt = import_tensorrt()
    data = build_engine(bundle / "model.onnx", precision, frames)
    spec = EngineSpec(
        file=engine_file(trt.__version__, compute_capability(), precision),
        tensorrt_version=trt.__version__, compute_capability=compute_capability(), precision=precision,
    )
    target = bundle / spec.file
    target.parent.mkdir(exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    card.engines = [e for e in card.engines if e.file != spec.file] + [spec]
    write_card(bundle, card)
    return spec
