"""`python -m trainer worker`: the trainer service devices submit training jobs to, over HTTP.

    POST /v1/plan              {project, package, options?}   what would be trained, the plan's warnings
    POST /v1/jobs              {project, package, held_out?, baseline?, options?} -> 201 the queued job
    GET  /v1/jobs?project=P    this device's jobs, newest first
    GET  /v1/jobs/<id>         state, progress (epoch, loss, validation mAP, ETA, curves), result
    POST /v1/jobs/<id>/cancel
    POST /v1/jobs/<id>/rollout {canary?, confirm_worse?}  a done job's model to the fleet, canary first (trainer/rollouts.py)
    POST /v1/jobs/<id>/rollback                          that rollout undone
    GET  /v1/info              this device's name, the store, the queue, the fleet (None: how to configure one)
    GET  /healthz              (no token) ok

Every /v1 call carries `Authorization: Bearer <token>`. A token from SCOPEHIVE_TRAINER_TOKENS
(`device=token,...`) is one device's; the shared SCOPEHIVE_TRAINER_TOKEN lets any device in,
naming itself in `X-ScopeHive-Device`. Either way a device sees only its own jobs. Packages and
bundles travel through the object store (keys in the JSON), never in a request body, so the
bodies stay small (64 KiB at most). Standard library HTTP server: the trainer image needs no
web framework, and the traffic is a few polls a second.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import signal
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from trainer.intake import Refused, parse_submission, stage
from trainer.jobs import JobQueue
from trainer.marks import TrainingMarks
from trainer.objectstore import ObjectStore
from trainer.rollouts import SETUP, FleetRollouts, FleetSettings
from trainer.runner import JobRunner

log = logging.getLogger(__name__)
TOKEN_ENV = "SCOPEHIVE_TRAINER_TOKEN"
TOKENS_ENV = "SCOPEHIVE_TRAINER_TOKENS"
DEVICE_HEADER = "X-ScopeHive-Device"
_DEVICE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_JOB_PATH = re.compile(r"^/v1/jobs/([0-9a-f]{12})(?:/(cancel|rollout|rollback))?$")
MAX_BODY = 64 * 1024


class TokenError(ValueError):
    """The service's tokens are not configured usably; the message says how to set them."""


@dataclass(frozen=True)
class Tokens:
    """token -> device (one device's token) and an optional token shared by every device."""

    per_device: dict[str, str]
    shared: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Tokens:
        env = dict(os.environ if environ is None else environ)
        per_device: dict[str, str] = {}
        for item in filter(None, (p.strip() for p in env.get(TOKENS_ENV, "").split(","))):
            device, sep, token = item.partition("=")
            if not sep or not _DEVICE.match(device.strip()) or len(token.strip()) < 16:
                raise TokenError(f"{TOKENS_ENV}: '{device.strip()}=...' must be device=token with a device name of letters, "
                                 "digits and ._- and a token of at least 16 characters")
            per_device[token.strip()] = device.strip()
        shared = env.get(TOKEN_ENV, "").strip() or None
        if shared is not None and len(shared) < 16:
            raise TokenError(f"{TOKEN_ENV} is shorter than 16 characters: use e.g. `python -c \"import secrets; print(secrets.token_urlsafe(24))\"`")
        if not per_device and shared is None:
            raise TokenError(f"no token: set {TOKEN_ENV} (one token for every device) or {TOKENS_ENV}=device=token,... "
                             "before starting the worker; devices send it as trainer.token_env")
        return cls(per_device, shared)

    def device(self, token: str, claimed: str | None) -> str | None:
        """The device this token belongs to (or the one it names, with the shared token); None: refused."""
        for known, device in self.per_device.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return device
        if self.shared is not None and hmac.compare_digest(self.shared.encode(), token.encode()):
            return claimed or ""  # "" is refused as a name, with a 400 that says to send one
        return None


@dataclass
class Service:
    queue: JobQueue
    store: ObjectStore
    runner: JobRunner
    tokens: Tokens
    work_dir: Path
    fleet: FleetRollouts | None = None

    def staging(self) -> Path:
        return self.work_dir / "staging"

    def submit(self, device: str, body: Any) -> dict[str, Any]:
        submission = parse_submission(body, device)
        folder, summary = stage(self.store, self.staging(), submission)
        job = self.queue.submit(device, submission.project, submission.as_request(), summary)
        target = self.runner.job_dir(job.id)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(folder, target)
        return job.public(self.queue.position(job))

    def plan(self, device: str, body: Any) -> dict[str, Any]:
        submission = parse_submission(body, device)
        return stage(self.store, self.staging(), submission, plan_only=True)[1]

    def info(self, device: str) -> dict[str, Any]:
        fleet = self.fleet.settings.public() if self.fleet is not None else None
        return {"device": device, "store": self.store.url, "queue": self.queue.busy(), "fleet": fleet,
                **({} if fleet else {"fleet_setup": f"no fleet: to roll models out from the panel, {SETUP}"})}

    def fleet_action(self, device: str, job_id: str, action: str, body: Any) -> dict[str, Any]:
        if self.fleet is None:
            raise Refused(409, f"this trainer has no fleet to roll out to: {SETUP}")
        if action == "rollout":
            return self.fleet.start(device, job_id, body)
        return self.fleet.rollback(device, job_id)


def _handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def _reply(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            if status >= 400:
                self.close_connection = True  # an unread body must not be taken for the next request
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _device(self) -> str | None:
            auth = self.headers.get("Authorization", "")
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            claimed = self.headers.get(DEVICE_HEADER)
            device = service.tokens.device(token, claimed) if token else None
            if device is None:
                self._reply(401, {"error": "wrong or missing trainer token: set the device's trainer token (trainer.token_env) "
                                  "to one the trainer was started with"})
                return None
            if not _DEVICE.match(device):
                self._reply(400, {"error": f"with the shared token the device must name itself in {DEVICE_HEADER} "
                                  "(letters, digits and ._-, at most 64)"})
                return None
            return device

        def _body(self) -> Any:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise Refused(400, "bad Content-Length") from None
            if length > MAX_BODY:
                raise Refused(413, f"request body over {MAX_BODY // 1024} KiB: packages go through the object store, not the request")
            try:
                return json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                raise Refused(400, "the body is not JSON") from None

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            url = urlparse(self.path)
            if url.path == "/healthz":
                self._reply(200, {"ok": True})
                return
            device = self._device()
            if device is None:
                return
            if url.path == "/v1/info":
                self._reply(200, service.info(device))
            elif url.path == "/v1/jobs":
                project = (parse_qs(url.query).get("project") or [""])[0] or None
                jobs = service.queue.of_device(device, project)
                self._reply(200, {"jobs": [j.public(service.queue.position(j)) for j in jobs]})
            elif (match := _JOB_PATH.match(url.path)) and not match.group(2):
                job = service.queue.get(device, match.group(1))
                if job is None:
                    self._reply(404, {"error": f"no job {match.group(1)} of this device on the trainer"})
                else:
                    self._reply(200, job.public(service.queue.position(job)))
            else:
                self._reply(404, {"error": f"no such endpoint: GET {url.path}"})

        def do_POST(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            device = self._device()
            if device is None:
                return
            try:
                if url.path == "/v1/jobs":
                    self._reply(201, service.submit(device, self._body()))
                elif url.path == "/v1/plan":
                    self._reply(200, service.plan(device, self._body()))
                elif (match := _JOB_PATH.match(url.path)) and match.group(2) in ("rollout", "rollback"):
                    self._reply(202, service.fleet_action(device, match.group(1), match.group(2), self._body()))
                elif (match := _JOB_PATH.match(url.path)) and match.group(2):
                    self._body()
                    job = service.queue.request_cancel(device, match.group(1))
                    if job is None:
                        self._reply(404, {"error": f"no job {match.group(1)} of this device on the trainer"})
                    else:
                        self._reply(200, job.public())
                else:
                    self._reply(404, {"error": f"no such endpoint: POST {url.path}"})
            except Refused as exc:
                self._reply(exc.status, {"error": str(exc)})
            except Exception as exc:  # the device shows this; the trace goes to the worker's log
                log.exception("POST %s failed", url.path)
                self._reply(500, {"error": f"the trainer failed on this request ({type(exc).__name__}: {exc}); see its log"})

    return Handler


def serve(host: str, port: int, work_dir: Path, store: ObjectStore, tokens: Tokens, ready: threading.Event | None = None,
          fleet: FleetSettings | None = None) -> None:
    """Run until SIGTERM/SIGINT; the job running then ends as `interrupted`, with the reason."""
    work_dir.mkdir(parents=True, exist_ok=True)
    queue = JobQueue(work_dir / "jobs.sqlite3")
    runner = JobRunner(queue, store, work_dir, marks=TrainingMarks.from_env())
    runner.recover()  # before anything listens: a device never reads a dead job as running
    rollouts = FleetRollouts(fleet, queue, store, work_dir) if fleet is not None else None
    if rollouts is not None:
        rollouts.recover()  # a rollout cut off by the last worker's end reads failed, with what to do
    service = Service(queue, store, runner, tokens, work_dir, rollouts)
    server = ThreadingHTTPServer((host, port), _handler(service))
    server.daemon_threads = True
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    jobs = threading.Thread(target=runner.run, args=(stop,), name="trainer-jobs")
    web = threading.Thread(target=server.serve_forever, name="trainer-http", daemon=True)
    jobs.start()
    web.start()
    print(f"trainer worker on http://{host}:{server.server_address[1]} (store {store.url}, work {work_dir}); "
          f"queue {queue.busy()}; fleet {fleet.access.fleet if fleet else 'none'}", flush=True)
    if ready is not None:
        ready.set()
    while not stop.wait(1.0):
        if not jobs.is_alive():
            log.error("the job runner stopped; the worker exits so its supervisor restarts it")
            break
    stop.set()
    server.shutdown()
    jobs.join()
    queue.close()
