"""ONNX Runtime backend: CUDA/TensorRT execution providers where the build has them, else CPU,
where the bundle's INT8 model runs when the trainer made it the default."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from device.inference.base import BackendContext
from device.inference.cpu_layout import conv_block, input_layout, laid_out
from device.models.bundle import BundleError, ModelBundle

log = logging.getLogger(__name__)
_PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
CPU_PROVIDER = "CPUExecutionProvider"
Precision = Literal["auto", "float", "int8"]


@dataclass(frozen=True)
class ModelChoice:
    """Which of the bundle's ONNX models this session runs, and why (said in the log once)."""

    path: Path
    precision: Literal["fp32", "int8"]
    why: str


def choose_model(bundle: ModelBundle, provider: str, precision: Precision = "auto") -> ModelChoice:
    """The INT8 model on the CPU provider when the bundle has one marked default (or `precision`
    asks for it); the float model on a GPU provider, for bundles without INT8, or when INT8 lost
    too much held-out mAP (the card's reason)."""
    spec, path = bundle.card.int8, bundle.int8_path
    if precision == "float":
        return ModelChoice(bundle.onnx_path, "fp32", "float asked for")
    if spec is None or path is None:
        if precision == "int8":
            raise BundleError(f"{bundle.root}: INT8 asked for, but the bundle has no INT8 model (trainer export --int8)")
        return ModelChoice(bundle.onnx_path, "fp32", "the bundle has no INT8 model")
    if precision == "int8":
        return ModelChoice(path, "int8", "INT8 asked for")
    if provider != CPU_PROVIDER:
        return ModelChoice(bundle.onnx_path, "fp32", f"{provider} runs the float model")
    if not spec.default:
        return ModelChoice(bundle.onnx_path, "fp32", f"the bundle's INT8 model is {spec.reason or 'not the default'}")
    return ModelChoice(path, "int8", f"the bundle's INT8 model is {spec.reason or 'the default on CPU'}")


# Threads (docs/metrics.md, bench/speed_int8.py): on the 2-core box a second intra-op thread made
# a demo frame 1.6x faster when the box was quiet (67.8 -> 41.9 ms wall, +6 % CPU) and gained
# nothing while others held the second core; so 2 cores keep both. From 4 cores one is left to
# capture, the loop, the sender and the web server; more than 8 threads on one pass is untested
# here (no larger machine was measured), so it is the cap.
MAX_INTRA_THREADS = 8


def cores_here() -> int:
    """Cores this process may run on (a container's or taskset's limit, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def intra_op_threads(cores: int) -> int:
    """ONNX Runtime intra-op threads for a device with `cores`: one core left for the rest from 4 up."""
    spare = 1 if cores >= 4 else 0
    return max(1, min(MAX_INTRA_THREADS, cores - spare))


def session_options(threads: int) -> Any:
    """The device's ONNX Runtime session options (bench/ gives a compared model the same)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Idle intra-op threads spin by default, burning the cores the next model (several on one
    # feed), capture and web threads need: two demo-model sessions in turn took 346-472 ms a
    # frame spinning vs 145-161 ms not (one alone: 58-149 vs 58-75 ms), on the shared 2-core box.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # the graph is one chain: parallel branches would only add threads
    return options


class OnnxBackend:
    """One onnxruntime InferenceSession over the bundle's model.onnx (or its INT8 copy, on CPU)."""

    def __init__(self, bundle: ModelBundle, cache_dir: Path, context: BackendContext | None = None,
                 precision: Precision = "auto", threads: int | None = None) -> None:
        import onnxruntime as ort

        available = set(ort.get_available_providers())
        providers = [p for p in _PREFERRED if p in available]
        choice = choose_model(bundle, providers[0], precision)
        if choice.precision == "int8":
            providers = [CPU_PROVIDER]  # QDQ graphs are for the CPU kernels; GPUs run the float model or TensorRT
        self.threads = threads or intra_op_threads(cores_here())
        options = session_options(self.threads)
        path, self.layout = choice.path, "as exported"
        if providers[0] == CPU_PROVIDER:
            path, self.layout = laid_out(choice.path, cache_dir / "layouts", conv_block())
        try:
            self._session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
            raise BundleError(f"{choice.path}: ONNX Runtime cannot load the model ({exc}); re-export the bundle") from exc
        inputs = self._session.get_inputs()
        wanted = bundle.card.input.name
        names = [i.name for i in inputs]
        if wanted and wanted not in names:
            raise BundleError(f"{bundle.root / 'model.json'}: input.name '{wanted}' is not an input of {choice.path.name} (it has {names})")
        self.input_name = wanted or names[0]
        self.input_shape = next(i.shape for i in inputs if i.name == self.input_name)
        # A laid-out file may take NCHW where the card says NHWC (device/inference/cpu_layout.py):
        # the detector feeds what the session takes.
        self.input_layout = input_layout(self._session.get_modelmeta().custom_metadata_map, bundle.card.input.layout)
        spec = bundle.card.input
        # A tensor in the card's NHWC (a hive backend's fallback, a benchmark) is still taken.
        self._nhwc_shape = (spec.height, spec.width, 3) if (spec.layout, self.input_layout) == ("NHWC", "NCHW") else None
        self.output_names = [o.name for o in self._session.get_outputs()]
        self.precision = choice.precision
        provider = self._session.get_providers()[0].removesuffix("ExecutionProvider")
        # The name is what health, the status point and the Models page show: INT8 says so.
        self.name = f"onnx/{provider}" + ("/int8" if choice.precision == "int8" else "")
        log.info("%s: %s on %s with %d intra-op threads (%s; %s)", bundle.card.label, choice.path.name, provider,
                 self.threads, choice.why, self.layout)

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        if self._nhwc_shape is not None and tensor.shape[1:] == self._nhwc_shape:
            tensor = np.ascontiguousarray(tensor.transpose(0, 3, 1, 2))
        outputs = self._session.run(self.output_names, {self.input_name: tensor})
        return dict(zip(self.output_names, (np.asarray(o) for o in outputs), strict=True))

    def status_fields(self) -> dict[str, str | int]:
        """Heartbeat fields (device_status): which model precision runs and on how many threads."""
        return {"precision": self.precision, "onnx_threads": self.threads}
