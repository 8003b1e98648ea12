"""A fake KServe v2 server on loopback (http.server) that answers for one bundle, honestly (its
own ONNX Runtime session) or with one of the hostile replies a device must survive.

`mode` is read per request, so a test can turn the same server hostile. `claimed`/`sent` count
what a hostile reply claimed and what the server managed to push before the device hung up.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from device.hive.names import triton_model_name
from device.models.bundle import load_bundle

HOSTILE = ("huge_claim", "huge_unframed", "slow_drip", "nan_scores", "class_out_of_range", "huge_boxes", "million_detections")
KSERVE = {np.dtype("float32"): "FP32", np.dtype("int64"): "INT64", np.dtype("float64"): "FP64", np.dtype("int32"): "INT32"}


def binary_reply(outputs: dict[str, np.ndarray]) -> tuple[bytes, int]:
    """KServe v2 binary reply body and its JSON header's length."""
    header = {"model_name": "fake", "outputs": [
        {"name": n, "datatype": KSERVE[a.dtype], "shape": list(a.shape), "parameters": {"binary_data_size": a.nbytes}}
        for n, a in outputs.items()]}
    text = json.dumps(header).encode()
    return text + b"".join(np.ascontiguousarray(a).tobytes() for a in outputs.values()), len(text)


class FakeKServe:
    """`url` goes in hive.endpoints; `start()` binds (again, on the same port after `stop()`)."""

    def __init__(self, bundle: Path, port: int = 0, mode: str = "honest", drip_s: float = 0.02) -> None:
        self.card = load_bundle(bundle).card
        self.session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
        self.model = triton_model_name(self.card)
        self.mode, self.drip_s = mode, drip_s
        self.latency_s = 0.0  # added to every inference answer: a LAN's round trip on loopback
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.inputs_seen: list[str] = []
        self.infers = 0
        self.sent = 0
        self._server: ThreadingHTTPServer | None = None
        n = 1_000_000  # built now, so that a test measuring the device's memory does not count it
        self.million = binary_reply({"boxes": np.tile(np.asarray([10, 10, 20, 20], np.float32), (1, n, 1)),
                                     "scores": np.ones((1, n), np.float32), "classes": np.zeros((1, n), np.int64)})

    def start(self) -> FakeKServe:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = _QuietServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """What the bundle's graph says, then bent by `mode`."""
        names = [o.name for o in self.session.get_outputs()]
        outputs = dict(zip(names, self.session.run(names, inputs), strict=True))
        if self.mode == "nan_scores":
            outputs["scores"] = np.full_like(outputs["scores"], np.nan)
        elif self.mode == "class_out_of_range":
            outputs["classes"] = np.full_like(outputs["classes"], len(self.card.classes) + 4)
        elif self.mode == "huge_boxes":
            outputs["boxes"] = np.where(np.arange(4) % 2, 1e30, -1e30).astype(np.float32) * np.ones_like(outputs["boxes"])
        return outputs


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_fake: FakeKServe

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        fake = self.server_fake
        if self.path in ("/v2/health/ready", f"/v2/models/{fake.model}/ready"):
            self._send(200, b"")
        elif self.path == f"/v2/models/{fake.model}":
            outputs = [{"name": o.name, "datatype": "FP32", "shape": [-1]} for o in fake.session.get_outputs()]
            self._send(200, json.dumps({"name": fake.model, "outputs": outputs}).encode())
        else:
            self._send(404, json.dumps({"error": "no such model"}).encode())

    def do_POST(self) -> None:
        fake = self.server_fake
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path != f"/v2/models/{fake.model}/infer":
            self._send(404, json.dumps({"error": "no such model"}).encode())
            return
        fake.infers += 1
        time.sleep(fake.latency_s)
        split = int(self.headers["Inference-Header-Content-Length"])
        request = json.loads(body[:split])
        item = request["inputs"][0]
        fake.inputs_seen.append(item["name"])
        expected = fake.session.get_inputs()[0].name
        if item["name"] != expected:
            self._send(400, json.dumps({"error": f"unexpected inference input '{item['name']}' for model '{fake.model}'"}).encode())
            return
        tensor = np.frombuffer(body[split:], np.float32).reshape(item["shape"])
        if fake.mode in ("huge_claim", "huge_unframed"):
            self._flood(fake)
            return
        reply, header_length = fake.million if fake.mode == "million_detections" else binary_reply(fake.answer({expected: tensor}))
        headers = {"Inference-Header-Content-Length": str(header_length), "Content-Type": "application/octet-stream"}
        if fake.mode == "slow_drip":
            self._drip(fake, reply, headers)
        else:
            self._send(200, reply, headers)

    def _flood(self, fake: FakeKServe) -> None:
        """Claims a 1 GB boxes tensor and streams it (with a Content-Length, or framed by close)."""
        size = 1 << 30
        header = json.dumps({"outputs": [{"name": "boxes", "datatype": "FP32", "shape": [1, size // 16, 4],
                                          "parameters": {"binary_data_size": size}}]}).encode()
        self.send_response(200)
        self.send_header("Inference-Header-Content-Length", str(len(header)))
        if fake.mode == "huge_claim":
            self.send_header("Content-Length", str(len(header) + size))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        zeros = bytes(1 << 20)
        with contextlib.suppress(OSError):
            self.wfile.write(header)
            for _ in range(1024):
                self.wfile.write(zeros)
                fake.sent += len(zeros)
        self.close_connection = True

    def _drip(self, fake: FakeKServe, reply: bytes, headers: dict[str, str]) -> None:
        """The honest reply, one byte every `drip_s` (each read of the device gets a byte in time)."""
        self.send_response(200)
        for key, value in {"Content-Length": str(len(reply)), **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        with contextlib.suppress(OSError):
            for byte in reply:
                self.wfile.write(struct.pack("B", byte))
                self.wfile.flush()
                fake.sent += 1
                time.sleep(fake.drip_s)
        self.close_connection = True


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a device hanging up on a hostile reply is the point, not an error


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
