"""One hive endpoint spoken to over KServe v2 HTTP: readiness and inference, each request within
its own deadline and each reply within a size the caller knows the model's outputs can take.

The client sends what the backend hands it: the preprocessed float tensor (`tensor` transport),
or the fitted 8-bit frame (`jpeg` transport), which it only encodes: how the model normalises its
input is the backend's business, not the hive's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from device.hive import kserve
from device.hive.kserve import HiveError
from device.hive.names import JPEG_INPUT, served_versions, triton_model_name
from device.hive.wire import Connection, Response, WireError
from device.models.bundle import ModelCard

__all__ = ["EndpointClient", "HiveError", "Reply", "ServedModel"]
PROBE_REPLY_BYTES = 1 << 20  # readiness, metadata and the repository index


@dataclass(frozen=True)
class Reply:
    outputs: dict[str, np.ndarray]
    bytes_sent: int
    bytes_received: int


@dataclass(frozen=True)
class ServedModel:
    """What the device asks a server for: this bundle's model over one transport, with these
    outputs, in replies of at most `max_reply_bytes`."""

    card: ModelCard
    transport: str
    outputs: tuple[str, ...]
    max_reply_bytes: int

    @property
    def name(self) -> str:
        return triton_model_name(self.card, self.transport)


class EndpointClient:
    """KServe v2 over one keep-alive connection to one endpoint; one thread at a time."""

    def __init__(self, url: str, model: ServedModel) -> None:
        self.url = url
        self.served = model
        self.model = model.name
        self._connection = Connection(url)

    def close(self) -> None:
        self._connection.close()

    def _call(self, method: str, path: str, deadline: float, body: bytes = b"", headers: dict[str, str] | None = None,
              max_body: int = PROBE_REPLY_BYTES) -> Response:
        try:
            return self._connection.request(method, path, body, headers, deadline=deadline, max_body=max_body)
        except WireError as exc:
            raise HiveError(str(exc)) from None

    def check(self, timeout_s: float) -> None:
        """Raise HiveError unless the server is ready and serves exactly this model and version
        with the bundle's outputs (all of it within `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        if self._call("GET", "/v2/health/ready", deadline).status != 200:
            raise HiveError("server not ready (/v2/health/ready)")
        if self._call("GET", f"/v2/models/{self.model}/ready", deadline).status != 200:
            raise HiveError(self._missing_model(deadline))
        response = self._call("GET", f"/v2/models/{self.model}", deadline)
        if response.status != 200:
            raise HiveError(f"model metadata: {kserve.error_text(response)}")
        metadata = kserve.json_body(response)
        entries = metadata.get("outputs") if isinstance(metadata, dict) else None
        if not isinstance(entries, list):
            raise HiveError("model metadata without outputs: not a KServe v2 server")
        outputs = sorted(str(o.get("name")) for o in entries if isinstance(o, dict))
        expected = sorted(self.served.outputs)
        if outputs != expected:
            raise HiveError(f"model {self.model} on the server has outputs {outputs}, the bundle expects {expected}")

    def _missing_model(self, deadline: float) -> str:
        try:  # the index is Triton's extension; plain v2 servers may not have it
            index = kserve.json_body(self._call("POST", "/v2/repository/index", deadline, b"{}"))
            names = [str(m.get("name", "")) for m in index if isinstance(m, dict)] if isinstance(index, list) else []
        except HiveError:
            names = []
        others = served_versions(self.served.card, names)
        if others:
            return f"server serves another version of {self.served.card.name}: {', '.join(others)}; this device runs {self.model}"
        return f"model {self.model} is not ready on the server (start it with `python -m trainer serve` or add it to the model repository)"

    def infer(self, data: np.ndarray, input_name: str, jpeg_quality: int, deadline: float) -> Reply:
        """One frame (the float tensor, or for `jpeg` the fitted 8-bit BGR frame), answered by
        `deadline` (time.monotonic()); HiveError with the reason for anything but a complete reply."""
        if self.served.transport == "jpeg":
            item = kserve.bytes_input(JPEG_INPUT, _jpeg(data, jpeg_quality))
        else:
            item = kserve.float_input(input_name, data)
        body, headers = kserve.infer_request([item], list(self.served.outputs))
        response = self._call("POST", f"/v2/models/{self.model}/infer", deadline, body, headers, self.served.max_reply_bytes)
        outputs = kserve.infer_outputs(response)
        return Reply(outputs, len(item.data), sum(int(v.nbytes) for v in outputs.values()))


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    if image.dtype != np.uint8 or image.ndim != 3:
        raise HiveError(f"the jpeg transport takes an 8-bit colour frame, got {image.dtype} {list(image.shape)}")
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise HiveError("OpenCV could not encode the frame as JPEG")
    return bytes(data.tobytes())
