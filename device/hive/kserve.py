"""KServe v2 inference requests and replies (the HTTP/REST protocol with Triton's binary tensor
extension), encoded and decoded here without a client library.

A reply is decoded strictly: its JSON header must fit in the space the caller allows, every
output must name a numeric datatype and a shape whose size is exactly the binary data it claims,
and the binary parts must add up to the body. Anything else is a HiveError with the reason.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from device.hive.wire import Response

HEADER_LENGTH = "Inference-Header-Content-Length"
DTYPES: dict[str, np.dtype[Any]] = {name: np.dtype(code) for name, code in {
    "BOOL": "?", "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "INT8": "i1", "INT16": "<i2",
    "INT32": "<i4", "INT64": "<i8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}.items()}
MAX_JSON_HEADER = 64 * 1024


class HiveError(RuntimeError):
    """A hive endpoint that cannot serve this frame or this model; the message says why."""


@dataclass(frozen=True)
class InputTensor:
    """One input as it goes on the wire: a float tensor, or one encoded image as BYTES [1, 1]."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: bytes


def float_input(name: str, tensor: np.ndarray) -> InputTensor:
    return InputTensor(name, "FP32", tuple(int(d) for d in tensor.shape), np.ascontiguousarray(tensor, "<f4").tobytes())


def bytes_input(name: str, payload: bytes) -> InputTensor:
    """BYTES elements travel with a 4-byte little-endian length before each one."""
    return InputTensor(name, "BYTES", (1, 1), struct.pack("<I", len(payload)) + payload)


def infer_request(inputs: list[InputTensor], outputs: list[str]) -> tuple[bytes, dict[str, str]]:
    """Body and headers of POST /v2/models/<model>/infer; every output asked for in binary."""
    header = {"inputs": [{"name": i.name, "shape": list(i.shape), "datatype": i.datatype,
                          "parameters": {"binary_data_size": len(i.data)}} for i in inputs],
              "outputs": [{"name": name, "parameters": {"binary_data": True}} for name in outputs]}
    text = json.dumps(header, separators=(",", ":")).encode()
    body = text + b"".join(i.data for i in inputs)
    return body, {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(text))}


def error_text(response: Response) -> str:
    """The server's own words for a refusal (KServe v2: {"error": "..."}), shortened."""
    try:
        message = json.loads(response.body[:4096]).get("error", "")
    except (ValueError, AttributeError, RecursionError):
        message = response.body[:200].decode("utf-8", "replace")
    return f"HTTP {response.status}: {str(message)[:200]}".rstrip(": ")


def json_body(response: Response) -> Any:
    try:
        return json.loads(response.body)
    except (ValueError, RecursionError) as exc:
        raise HiveError(f"the server's reply is not JSON ({type(exc).__name__})") from None


def _shape(value: object, name: str) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > 8 or not all(isinstance(d, int) and 0 <= d < 1 << 31 for d in value):
        raise HiveError(f"output {name!r} has no valid shape: {str(value)[:80]}")
    return tuple(value)


def _output(entry: object, body: memoryview, offset: int) -> tuple[str, np.ndarray, int]:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise HiveError("an output without a name")
    name = entry["name"]
    dtype = DTYPES.get(str(entry.get("datatype")))
    if dtype is None:
        raise HiveError(f"output {name!r} has datatype {str(entry.get('datatype'))[:20]!r}, not a number")
    shape = _shape(entry.get("shape"), name)
    expected = math.prod(shape) * dtype.itemsize
    parameters = entry.get("parameters") or {}
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is None:  # JSON data: bounded already by the reply's size
        data = entry.get("data")
        if not isinstance(data, list):
            raise HiveError(f"output {name!r} has neither binary nor JSON data")
        try:
            array = np.asarray(data, dtype)
        except (ValueError, TypeError, OverflowError):
            raise HiveError(f"output {name!r} has JSON data that is not {dtype}") from None
        if array.size != math.prod(shape):
            raise HiveError(f"output {name!r} has {array.size} values for shape {list(shape)}")
        return name, array.reshape(shape), offset
    if not isinstance(size, int) or size != expected:
        raise HiveError(f"output {name!r} claims {size} bytes, its shape {list(shape)} of {entry['datatype']} takes {expected}")
    if offset + size > len(body):
        raise HiveError(f"output {name!r} claims {size} bytes, the reply holds {len(body) - offset} more")
    array = np.frombuffer(body[offset : offset + size], dtype).reshape(shape)
    return name, array, offset + size


def infer_outputs(response: Response) -> dict[str, np.ndarray]:
    """The outputs of an inference reply, or HiveError saying what is wrong with it."""
    if response.status != 200:
        raise HiveError(error_text(response))
    body = memoryview(response.body)
    length_text = response.headers.get(HEADER_LENGTH.lower(), str(len(body)))
    if not length_text.isdigit() or int(length_text) > min(len(body), MAX_JSON_HEADER):
        raise HiveError(f"{HEADER_LENGTH} {length_text[:20]!r} does not fit the reply (at most {MAX_JSON_HEADER} bytes)")
    offset = int(length_text)
    try:
        header = json.loads(bytes(body[:offset]))
    except (ValueError, RecursionError) as exc:
        raise HiveError(f"the reply's JSON header does not parse ({type(exc).__name__})") from None
    entries = header.get("outputs") if isinstance(header, dict) else None
    if not isinstance(entries, list) or len(entries) > 64:
        raise HiveError("the reply has no list of outputs")
    outputs: dict[str, np.ndarray] = {}
    for entry in entries:
        name, array, offset = _output(entry, body, offset)
        if name in outputs:
            raise HiveError(f"output {name!r} twice in one reply")
        outputs[name] = array
    if offset != len(body):
        raise HiveError(f"{len(body) - offset} bytes past the outputs the reply describes")
    return outputs
