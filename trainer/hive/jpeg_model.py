"""JPEG -> the model's input tensor, on the server. This file is also the Triton Python-backend
model (`<name>_decode/1/model.py` in a written repository), so it needs only numpy and OpenCV.

The device sends the frame already fitted to the network size (resize/letterbox done on the
device, which needs the transform to map boxes back); the server only decodes and normalises."""

from __future__ import annotations

import json
from typing import Any

import cv2
import numpy as np


class JpegError(ValueError):
    """Bytes that are not a JPEG of the model's input size."""


def jpeg_to_tensor(data: bytes, spec: dict[str, Any]) -> np.ndarray:
    """One JPEG (8-bit BGR, network size) -> float32 [H, W, 3] or [3, H, W] as model.json says.
    `spec`: width, height, layout, color, scale, mean, std."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise JpegError("the payload is not a decodable JPEG")
    if image.shape[:2] != (spec["height"], spec["width"]):
        raise JpegError(f"the JPEG is {image.shape[1]}x{image.shape[0]}, the model takes {spec['width']}x{spec['height']}")
    if spec["color"] == "RGB":
        image = image[:, :, ::-1]
    std = np.asarray(spec["std"], np.float32)
    tensor = image.astype(np.float32) * (np.float32(spec["scale"]) / std) - np.asarray(spec["mean"], np.float32) / std
    if spec["layout"] == "NCHW":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor)


class TritonPythonModel:
    """Triton Python backend entry point (stock tritonserver only; PyTriton calls jpeg_to_tensor)."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        self.spec = json.loads(config["parameters"]["scopehive_input"]["string_value"])
        self.output = config["output"][0]["name"]

    def execute(self, requests: list[Any]) -> list[Any]:
        import triton_python_backend_utils as pb_utils  # only inside Triton's Python backend

        responses = []
        for request in requests:
            batch = pb_utils.get_input_tensor_by_name(request, "jpeg").as_numpy().reshape(-1)
            try:
                tensor = np.stack([jpeg_to_tensor(bytes(item), self.spec) for item in batch])
            except JpegError as exc:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))))
                continue
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor(self.output, tensor)]))
        return responses
