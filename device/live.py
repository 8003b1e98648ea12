"""The live blueprint: MJPEG stream, snapshot, SSE live statistics and /healthz.

It only talks to the DeviceRuntime protocol, and encodes JPEGs only while a client is reading.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, jsonify, request, session

from device import jsonsafe
from device.client_limits import capped
from device.web_protocol import DeviceRuntime

bp = Blueprint("live", __name__)
BOUNDARY = "scopehiveframe"
MAX_STREAM_FPS = 30.0


def runtime() -> DeviceRuntime:
    return current_app.extensions["scopehive.runtime"]  # type: ignore[no-any-return]


def _quality() -> int:
    return int(current_app.config.get("SCOPEHIVE_JPEG_QUALITY", 80))


def mjpeg_frames(rt: DeviceRuntime, quality: int, limit: int | None = None) -> Iterator[bytes]:
    """One multipart part per new processed frame, at most MAX_STREAM_FPS; nothing is encoded
    when nobody iterates (the generator only runs while a client reads)."""
    last_index = -1
    sent = 0
    while limit is None or sent < limit:
        latest = rt.latest()
        if latest is None or latest.index == last_index:
            time.sleep(0.01)
            continue
        jpeg = rt.annotated_jpeg(quality)
        if jpeg is None:
            continue
        last_index = latest.index
        sent += 1
        yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n").encode() + jpeg + b"\r\n"
        time.sleep(1.0 / MAX_STREAM_FPS)


@bp.get("/stream.mjpg")
def stream() -> Response:
    limit = request.args.get("frames", type=int)
    return capped("stream", lambda: Response(
        mjpeg_frames(runtime(), _quality(), limit), mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={"Cache-Control": "no-store"}))


@bp.get("/snapshot.jpg")
def snapshot() -> Response:
    jpeg = runtime().annotated_jpeg(_quality())
    if jpeg is None:
        return Response("no frame yet: the camera has not delivered one (see /healthz)", status=503, mimetype="text/plain")
    return Response(jpeg, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})


def sse_events(rt: DeviceRuntime, interval: float, limit: int | None = None) -> Iterator[str]:
    sent = 0
    while limit is None or sent < limit:
        yield f"data: {jsonsafe.dumps(rt.live_stats(), default=str)}\n\n"  # no NaN/Infinity for JSON.parse
        sent += 1
        if limit is None or sent < limit:
            time.sleep(interval)


@bp.get("/api/live")
def live() -> Response:
    """Server-sent events: one JSON object of live statistics every `interval` seconds."""
    interval = min(max(request.args.get("interval", 0.5, type=float), 0.1), 10.0)
    limit = request.args.get("events", type=int)
    return capped("SSE", lambda: Response(
        sse_events(runtime(), interval, limit), mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}))


def stream_token_given() -> str:
    """The stream token of this request: `Authorization: Bearer <token>` (kept out of access logs)
    or `?token=` (what an <img> tag in Grafana can send)."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.args.get("token", "")


def may_see_details() -> bool:
    """A logged-in panel user, or a request carrying the stream token."""
    if session.get("user"):
        return True
    config = current_app.config.get("SCOPEHIVE")
    token_env = getattr(getattr(config, "panel", None), "stream_token_env", "SCOPEHIVE_STREAM_TOKEN")
    token, given = os.environ.get(token_env, ""), stream_token_given()
    return bool(token and given) and hmac.compare_digest(token.encode(), given.encode())


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200/503 for a container healthcheck; anonymous callers get only that (the details name the
    camera, model and metrics destination), a login or the stream token gets everything."""
    health = runtime().health()
    code = 200 if health.get("ok") else 503
    if not may_see_details():
        return jsonify({"ok": bool(health.get("ok")), "status": "ok" if code == 200 else "unhealthy"}), code
    return jsonify(health), code
