"""Write bundles as a Triton model repository for the stock tritonserver (Jetson, GPU servers).

Per bundle: `<name>.<version>` (ONNX Runtime backend, optionally through its TensorRT execution
provider), `<name>.<version>_decode` (Python backend: JPEG -> tensor, trainer/hive/jpeg_model.py)
and `<name>.<version>_jpeg` (an ensemble of the two). The same names as `python -m trainer serve`,
so devices do not care which one answers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from trainer.hive.models import ServedModel, TensorInfo, load_served_model

_TYPES = {np.float32: "TYPE_FP32", np.float16: "TYPE_FP16", np.float64: "TYPE_FP64", np.int64: "TYPE_INT64",
          np.int32: "TYPE_INT32", np.uint8: "TYPE_UINT8", np.bool_: "TYPE_BOOL"}


def _dims(model: ServedModel, dims: tuple[int, ...]) -> str:
    """max_batch_size 0 (the ONNX fixes batch 1): Triton's dims then include the batch."""
    full = dims if model.batch > 1 else (1, *dims)
    return "[" + ", ".join(str(d) for d in full) + "]"


def _tensor(model: ServedModel, info: TensorInfo) -> str:
    return f'{{ name: "{info.name}" data_type: {_TYPES[info.dtype]} dims: {_dims(model, info.dims)} }}'


def _header(name: str, model: ServedModel, backend: str) -> list[str]:
    return [f'name: "{name}"', backend, f"max_batch_size: {model.batch if model.batch > 1 else 0}"]


def onnx_config(model: ServedModel, tensorrt: bool) -> str:
    lines = _header(model.name, model, 'backend: "onnxruntime"')
    lines.append(f"input [ {_tensor(model, model.input)} ]")
    lines.append("output [ " + ", ".join(_tensor(model, o) for o in model.outputs) + " ]")
    if model.batch > 1:
        lines.append("dynamic_batching { }")
    if tensorrt:  # TensorRT through ONNX Runtime: engines are built on the server's own GPU at load
        lines.append('optimization { execution_accelerators { gpu_execution_accelerator: [ { name: "tensorrt" '
                     'parameters { key: "precision_mode" value: "FP16" } parameters { key: "max_workspace_size_bytes" '
                     'value: "1073741824" } } ] } }')
    return "\n".join(lines) + "\n"


def decode_config(model: ServedModel) -> str:
    name = model.name + "_decode"
    lines = _header(name, model, 'backend: "python"')
    lines.append(f'input [ {{ name: "jpeg" data_type: TYPE_STRING dims: {_dims(model, (1,))} }} ]')
    lines.append(f"output [ {_tensor(model, TensorInfo(model.input.name, np.float32, model.input.dims))} ]")
    lines.append(f'parameters {{ key: "scopehive_input" value: {{ string_value: {json.dumps(json.dumps(model.input_spec()))} }} }}')
    return "\n".join(lines) + "\n"


def ensemble_config(model: ServedModel) -> str:
    lines = _header(model.jpeg_name, model, 'platform: "ensemble"')
    lines.append(f'input [ {{ name: "jpeg" data_type: TYPE_STRING dims: {_dims(model, (1,))} }} ]')
    lines.append("output [ " + ", ".join(_tensor(model, o) for o in model.outputs) + " ]")
    outputs = " ".join(f'output_map {{ key: "{o.name}" value: "{o.name}" }}' for o in model.outputs)
    lines.append(
        "ensemble_scheduling { step [ "
        f'{{ model_name: "{model.name}_decode" model_version: -1 input_map {{ key: "jpeg" value: "jpeg" }} '
        f'output_map {{ key: "{model.input.name}" value: "tensor" }} }}, '
        f'{{ model_name: "{model.name}" model_version: -1 input_map {{ key: "{model.input.name}" value: "tensor" }} {outputs} }}'
        " ] }")
    return "\n".join(lines) + "\n"


def write_repository(bundles: list[Path], out: Path, tensorrt: bool = False) -> list[str]:
    """Write (or refresh) one folder per served model under `out`; returns the model names."""
    names: list[str] = []
    for bundle in bundles:
        model = load_served_model(bundle)
        folders = {model.name: onnx_config(model, tensorrt), model.name + "_decode": decode_config(model),
                   model.jpeg_name: ensemble_config(model)}
        for name, config in folders.items():
            (out / name / "1").mkdir(parents=True, exist_ok=True)
            (out / name / "config.pbtxt").write_text(config)
            names.append(name)
        shutil.copyfile(bundle / "model.onnx", out / model.name / "1" / "model.onnx")
        shutil.copyfile(Path(__file__).with_name("jpeg_model.py"), out / (model.name + "_decode") / "1" / "model.py")
    return names
