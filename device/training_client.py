"""Talking to the trainer service (`python -m trainer worker`): its settings and a small HTTP client.

The panel's Train page uses it; nothing here knows the panel or the runtime. Packages and bundles
travel through the object store both sides share (`store`), the HTTP calls only carry their keys.
Every failure is one of two exceptions whose message a microscopist can act on: the trainer
cannot be reached (`TrainerUnreachable`), or it answered no (`TrainerRefused`, with its reason).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import quote

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_PORT = 8700


class TrainerSettings(BaseModel):
    """`trainer:` in the device config. Empty `url`: no trainer, and the Train page says how to start one."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field("", description="The trainer service, e.g. http://gpu-server:8700 (python -m trainer worker); empty = none")
    token_env: str = Field("SCOPEHIVE_TRAINER_TOKEN", description="Environment variable holding the token the trainer was started with")
    store: str = Field(
        "", description="Object store shared with the trainer (its --store): file:///folder or s3://bucket/prefix?endpoint=host:port; "
        "empty = the panel's storage (one box: device and trainer on the same machine or mount)",
    )
    timeout_s: float = Field(180.0, gt=0, le=3600, description="How long a call may take (a submit checks every image of the package first)")
    options: dict[str, int | float] = Field(
        default_factory=dict, description="Training options sent with every job, e.g. {\"epochs\": 2} for a quick trial run "
        "(the trainer checks them; JSON in the environment)",
    )

    @field_validator("options", mode="before")
    @classmethod
    def _options_text(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"options must be a JSON object such as {{\"epochs\": 2}} ({exc})") from None
        return value

    @property
    def configured(self) -> bool:
        return bool(self.url.strip())


class TrainerError(RuntimeError):
    """Base of what the client raises."""


class TrainerUnreachable(TrainerError):
    """No answer (down, wrong address, network)."""


class TrainerRefused(TrainerError):
    """The trainer answered with an error; `status` is its HTTP status, the message its reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def device_id(name: str) -> str:
    """The device's name as the trainer accepts it (letters, digits and ._-, at most 64)."""
    return (re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "device")[:64]


class TrainerClient:
    def __init__(self, settings: TrainerSettings, device_name: str) -> None:
        self.settings = settings
        self.base = settings.url.rstrip("/")
        self.device = device_id(device_name)
        self.token = os.environ.get(settings.token_env, "").strip()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        if not self.token:
            raise TrainerRefused(401, f"this device has no trainer token: set {self.settings.token_env} on the device to the token "
                                 "the trainer was started with, and restart it")
        headers = {"Authorization": f"Bearer {self.token}", "X-ScopeHive-Device": self.device}
        try:
            response = requests.request(method, self.base + path, json=body, headers=headers, timeout=self.settings.timeout_s)
        except requests.RequestException as exc:
            reason = type(exc).__name__.replace("Error", " error").replace("Timeout", "timeout")
            raise TrainerUnreachable(f"the trainer at {self.base} does not answer ({reason}): start it (python -m trainer worker) "
                                     "or check trainer.url") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400:
            message = payload.get("error") if isinstance(payload, dict) else None
            raise TrainerRefused(response.status_code, message or f"the trainer answered HTTP {response.status_code} without a reason")
        if payload is None:
            raise TrainerRefused(502, f"{self.base} answered, but not as a ScopeHive trainer (no JSON): check trainer.url")
        return payload

    def info(self) -> dict[str, Any]:
        """{device: the name the trainer knows this device by (its store prefix), store, queue, fleet (None: fleet_setup says how)}."""
        info: dict[str, Any] = self._call("GET", "/v1/info")
        return info

    def plan(self, body: dict[str, Any]) -> dict[str, Any]:
        plan: dict[str, Any] = self._call("POST", "/v1/plan", body)
        return plan

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        job: dict[str, Any] = self._call("POST", "/v1/jobs", body)
        return job

    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._call("GET", f"/v1/jobs/{job_id}")
        return job

    def jobs(self, project: str) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = self._call("GET", f"/v1/jobs?project={quote(project)}")["jobs"]
        return jobs

    def cancel(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._call("POST", f"/v1/jobs/{job_id}/cancel", {})
        return job

    def rollout(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Start rolling the job's model out to the trainer's fleet, canary first (the trainer checks the confirmation too)."""
        job: dict[str, Any] = self._call("POST", f"/v1/jobs/{job_id}/rollout", body)
        return job

    def rollback(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._call("POST", f"/v1/jobs/{job_id}/rollback", {})
        return job
