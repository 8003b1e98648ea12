"""A bundle as a hive server sees it: its ONNX session and the tensors it takes and gives."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.bundle import BundleError, ModelCard, read_card
from trainer.hive.names import triton_model_name

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
           "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: Any  # numpy dtype class
    dims: tuple[int, ...]  # without the batch dimension; -1 = any


@dataclass
class ServedModel:
    """One bundle loaded for serving (CUDA/TensorRT execution providers where the build has them)."""

    root: Path
    card: ModelCard
    session: Any
    input: TensorInfo
    outputs: list[TensorInfo]
    batch: int  # most frames one call may take: 1 when the ONNX fixes its batch dimension
    layout: str = "as exported"  # what the CPU provider runs (device/inference/cpu_layout.py)

    @property
    def name(self) -> str:
        return triton_model_name(self.card.name, self.card.version)

    @property
    def jpeg_name(self) -> str:
        return triton_model_name(self.card.name, self.card.version, "jpeg")

    def input_spec(self) -> dict[str, Any]:
        """What jpeg_to_tensor needs from model.json."""
        spec, norm = self.card.input, self.card.normalization
        return {"width": spec.width, "height": spec.height, "layout": spec.layout, "color": spec.color,
                "scale": norm.scale, "mean": list(norm.mean), "std": list(norm.std)}

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        results = self.session.run([o.name for o in self.outputs], {self.input.name: tensor})
        return {o.name: np.asarray(r, o.dtype) for o, r in zip(self.outputs, results, strict=True)}


def _info(node: Any) -> TensorInfo:
    if node.type not in _DTYPES:
        raise BundleError(f"tensor {node.name} has type {node.type}, which a hive server does not serve")
    dims = tuple(d if isinstance(d, int) and d > 0 else -1 for d in node.shape[1:])
    return TensorInfo(node.name, _DTYPES[node.type], dims)


def load_served_model(bundle: Path, max_batch: int = 8) -> ServedModel:
    """Read model.json and open model.onnx; BundleError says what is wrong."""
    import onnxruntime as ort

    card = read_card(bundle)
    preferred = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    providers = [p for p in preferred if p in ort.get_available_providers()]
    path, layout = _laid_out(bundle / "model.onnx", providers[0])
    try:
        session = ort.InferenceSession(str(path), providers=providers)
    except Exception as exc:  # onnxruntime raises its own types for bad graphs
        raise BundleError(f"{bundle / 'model.onnx'}: ONNX Runtime cannot load it ({exc})") from exc
    inputs = {i.name: i for i in session.get_inputs()}
    wanted = card.input.name or next(iter(inputs))
    if wanted not in inputs:
        raise BundleError(f"{bundle / 'model.json'}: input.name '{wanted}' is not an input of model.onnx ({list(inputs)})")
    first = inputs[wanted].shape[0]
    batch = max_batch if not isinstance(first, int) or first <= 0 else 1
    return ServedModel(bundle, card, session, _info(inputs[wanted]), [_info(o) for o in session.get_outputs()], batch, layout)


def _laid_out(onnx_path: Path, provider: str) -> tuple[Path, str]:
    """On the CPU provider, the float model with its narrow channel groups padded to this CPU's
    convolution block, as a device runs it (cached by content in the temp folder); the input stays
    as exported, since devices send tensors in the card's layout."""
    from device.inference.cpu_layout import conv_block, laid_out

    if provider != "CPUExecutionProvider":
        return onnx_path, "as exported"
    return laid_out(onnx_path, Path(tempfile.gettempdir()) / "scopehive-layouts", conv_block(), nchw=False)
