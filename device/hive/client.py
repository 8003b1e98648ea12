"""One hive endpoint spoken to with `tritonclient` (KServe v2 over HTTP): readiness and inference.

tritonclient's HTTP client runs on gevent and must stay on the thread that made it, so the
frame loop and the prober each hold their own `EndpointClient`.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from device.hive.names import JPEG_INPUT, served_versions, triton_model_name
from device.models.bundle import ModelCard


class HiveError(RuntimeError):
    """A hive endpoint that cannot serve this frame or this model; the message says why."""


@dataclass(frozen=True)
class Reply:
    outputs: dict[str, np.ndarray]
    bytes_sent: int
    bytes_received: int


def _host(url: str) -> tuple[str, bool]:
    secure = url.startswith("https://")
    return url.split("://", 1)[1], secure


def _describe(exc: BaseException) -> str:
    """Short reason for /healthz from whatever the client stack raised."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
        return f"unreachable ({text})"
    if isinstance(exc, (TimeoutError, socket.timeout)) or "timed out" in text.lower() or "Timeout" in type(exc).__name__:
        return "too slow (deadline passed)"
    return f"{type(exc).__name__}: {text}"[:300]


class EndpointClient:
    """A KServe v2 HTTP client for one endpoint and one bundle."""

    def __init__(self, url: str, card: ModelCard, transport: str, timeout_s: float, expected_outputs: list[str]) -> None:
        import tritonclient.http as httpclient

        self.url = url
        self.expected_outputs = sorted(expected_outputs)
        self.card = card
        self.transport = transport
        self.model = triton_model_name(card, transport)
        self.timeout_s = timeout_s
        host, secure = _host(url)
        self._http = httpclient
        self._client = httpclient.InferenceServerClient(host, connection_timeout=max(0.05, min(timeout_s, 2.0)),
                                                        network_timeout=timeout_s, ssl=secure)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a broken connection may raise; nothing is left to do
            self._client.close()

    def check(self) -> None:
        """Raise HiveError unless the server is ready and serves exactly this model and version
        with the bundle's outputs."""
        try:
            if not self._client.is_server_ready():
                raise HiveError("server not ready (/v2/health/ready)")
            if not self._client.is_model_ready(self.model):
                raise HiveError(self._missing_model())
            metadata = self._client.get_model_metadata(self.model)
        except HiveError:
            raise
        except Exception as exc:  # gevent, socket and tritonclient errors all mean "not usable now"
            raise HiveError(_describe(exc)) from exc
        outputs = sorted(o["name"] for o in metadata.get("outputs", []))
        expected = self.expected_outputs or outputs
        if outputs != expected:
            raise HiveError(f"model {self.model} on the server has outputs {outputs}, the bundle expects {expected}")

    def _missing_model(self) -> str:
        try:
            names = [m.get("name", "") for m in self._client.get_model_repository_index()]
        except Exception:  # the index is Triton's extension; plain v2 servers may not have it
            names = []
        others = served_versions(self.card, names)
        if others:
            return f"server serves another version of {self.card.name}: {', '.join(others)}; this device runs {self.model}"
        return f"model {self.model} is not ready on the server (start it with `python -m trainer serve` or add it to the model repository)"

    def infer(self, tensor: np.ndarray, input_name: str, jpeg_quality: int) -> Reply:
        """One frame; raises HiveError (with the reason) for anything but a complete answer."""
        if self.transport == "jpeg":
            payload = _jpeg_payload(tensor, self.card, jpeg_quality)
            item = self._http.InferInput(JPEG_INPUT, [1, 1], "BYTES")  # a batch of one frame
            item.set_data_from_numpy(payload, binary_data=True)
            sent = len(payload[0, 0]) + 4  # KServe v2 binary BYTES: 4-byte length prefix
        else:
            item = self._http.InferInput(input_name, list(tensor.shape), "FP32")
            item.set_data_from_numpy(tensor, binary_data=True)
            sent = tensor.nbytes
        try:
            result = self._client.infer(self.model, [item])
            response: dict[str, Any] = result.get_response()
            outputs = {o["name"]: result.as_numpy(o["name"]) for o in response.get("outputs", [])}
        except Exception as exc:  # gevent.Timeout, socket errors, InferenceServerException
            raise HiveError(_describe(exc)) from exc
        received = sum(int(np.asarray(v).nbytes) for v in outputs.values() if v is not None)
        return Reply(outputs, sent, received)


def _jpeg_payload(tensor: np.ndarray, card: ModelCard, quality: int) -> np.ndarray:
    from device.inference.preprocess import denormalize

    image = denormalize(tensor, card.input, card.normalization)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise HiveError("OpenCV could not encode the frame as JPEG")
    return np.array([[data.tobytes()]], dtype=np.object_)
