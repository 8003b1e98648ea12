"""KServe v2 replies decoded strictly: every claim in the JSON header must match the bytes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from device.hive.kserve import HiveError, infer_outputs
from device.hive.wire import Response


def reply(outputs: list[dict[str, object]], binary: bytes = b"", status: int = 200, header: bytes | None = None) -> Response:
    text = header if header is not None else json.dumps({"outputs": outputs}).encode()
    return Response(status, {"inference-header-content-length": str(len(text))}, text + binary)


def test_binary_and_json_outputs_decode() -> None:
    scores = np.asarray([[0.5, 0.25]], np.float32)
    decoded = infer_outputs(reply([
        {"name": "scores", "datatype": "FP32", "shape": [1, 2], "parameters": {"binary_data_size": 8}},
        {"name": "classes", "datatype": "INT64", "shape": [1, 2], "data": [1, 2]}], scores.tobytes()))
    np.testing.assert_array_equal(decoded["scores"], scores)
    np.testing.assert_array_equal(decoded["classes"], [[1, 2]])


@pytest.mark.parametrize(("response", "why"), [
    (reply([{"name": "b", "datatype": "FP32", "shape": [1, 268435456, 4], "parameters": {"binary_data_size": 4294967296}}], bytes(16)),
     "claims 4294967296 bytes, the reply holds 16"),
    (reply([{"name": "b", "datatype": "FP32", "shape": [1, 4], "parameters": {"binary_data_size": 8}}], bytes(8)), "takes 16"),
    (reply([{"name": "b", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 4}}], bytes(4)), "not a number"),
    (reply([{"name": "b", "datatype": "FP32", "shape": [-1], "data": []}]), "no valid shape"),
    (reply([{"name": "b", "datatype": "FP32", "shape": [2], "data": [1.0]}]), "1 values for shape [2]"),
    (reply([{"name": "b", "datatype": "FP32", "shape": [1], "parameters": {"binary_data_size": 4}}] * 2, bytes(8)), "twice"),
    (reply([{"name": "b", "datatype": "FP32", "shape": [1], "parameters": {"binary_data_size": 4}}], bytes(12)), "8 bytes past"),
    (reply([], header=b"[" * 100_000), "does not fit"),
    (reply([], header=b"[" * 50_000), "does not parse"),
    (reply([], status=400, header=b'{"error": "unexpected inference input \'input\'"}'), "HTTP 400: unexpected inference input"),
], ids=["1 GB claimed, 16 B sent", "size disagrees with shape", "BYTES output", "negative dimension", "JSON data short",
        "same output twice", "trailing bytes", "header over 64 KiB", "nested 50k deep", "server refusal"])
def test_a_reply_that_contradicts_itself_is_refused(response: Response, why: str) -> None:
    with pytest.raises(HiveError) as refused:
        infer_outputs(response)
    assert why in str(refused.value)
