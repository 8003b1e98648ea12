"""ONNX Runtime backend: CUDA/TensorRT execution providers where the build has them, else CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from device.inference.base import BackendContext
from device.models.bundle import BundleError, ModelBundle

_PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class OnnxBackend:
    """One onnxruntime InferenceSession over the bundle's model.onnx."""

    def __init__(self, bundle: ModelBundle, cache_dir: Path, context: BackendContext | None = None) -> None:
        import onnxruntime as ort

        available = set(ort.get_available_providers())
        providers = [p for p in _PREFERRED if p in available]
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # Idle intra-op threads spin by default, burning the cores the next model (several on one
        # feed), capture and web threads need: two demo-model sessions in turn took 346-472 ms a
        # frame spinning vs 145-161 ms not (one alone: 58-149 vs 58-75 ms), on the shared 2-core box.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(bundle.onnx_path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
            raise BundleError(f"{bundle.onnx_path}: ONNX Runtime cannot load the model ({exc}); re-export the bundle") from exc
        inputs = self._session.get_inputs()
        wanted = bundle.card.input.name
        names = [i.name for i in inputs]
        if wanted and wanted not in names:
            raise BundleError(f"{bundle.root / 'model.json'}: input.name '{wanted}' is not an input of model.onnx (it has {names})")
        self.input_name = wanted or names[0]
        self.input_shape = next(i.shape for i in inputs if i.name == self.input_name)
        self.output_names = [o.name for o in self._session.get_outputs()]
        self.name = f"onnx/{self._session.get_providers()[0].removesuffix('ExecutionProvider')}"

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self._session.run(self.output_names, {self.input_name: tensor})
        return dict(zip(self.output_names, (np.asarray(o) for o in outputs), strict=True))
