"""schemathesis against the device's JSON API, in process (WSGI), logged in with a CSRF token:
no 5xx, only standard JSON (no NaN/Infinity tokens), and every refusal a 4xx whose JSON says why.

The device has everything a JSON route may need (a model, a tracking stage, an experiment store),
so a 503 "not available here" is a finding too. Bounded: a few examples per operation and a
deadline per example (FUZZ_EXAMPLES, or SCOPEHIVE_FUZZ_EXAMPLES for a deeper run; FUZZ_DEADLINE_MS): about 20 s.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from device import openapi
from device.config import DeviceConfig
from device.drift.stage import DriftStage
from device.experiments.recorder import ExperimentRecorder
from device.experiments.store import ExperimentStore
from device.inbox.settings import InboxSettings
from device.inbox.store import InboxStore
from device.inbox.watch import Inbox
from device.monitoring import configure_monitoring, monitoring_settings
from device.sources.synthetic import CLASSES
from device.tracking.settings import TrackingSettings
from device.tracking.stage import TrackingStage
from tests.device.inbox.test_inbox import analysis, scene
from tests.device.inbox.test_inbox import frame as inbox_frame
from tests.device.panel.conftest import PASSWORD, Auth, make_app
from tests.device.panel.helpers import SyntheticRuntime, bundle_zip

FUZZ_EXAMPLES = int(os.environ.get("SCOPEHIVE_FUZZ_EXAMPLES", "25"))  # more for a deeper run
FUZZ_DEADLINE_MS = 2000


class FullRuntime(SyntheticRuntime):
    """The panel's test runtime with a model, a tracking stage and an experiment recorder."""

    def __init__(self, root: Path) -> None:
        super().__init__(root / "cache")
        self.switch_model(bundle_zip(root / "tiny.zip", classes=list(CLASSES)))
        self.recorder = ExperimentRecorder(ExperimentStore(root / "experiments.sqlite"), "scope-1", "lab",
                                           lambda kind, message, tags, when: None)
        self.stage = TrackingStage(TrackingSettings(min_frames=2), None)
        for i in range(4):
            frame = self.scope.read()
            self.stage.update(frame.truth, i / 10, frame.image.shape[:2], "model", CLASSES, {})
        self.review = Inbox(InboxSettings(spot_share=0.0, min_interval_s=0.0), InboxStore(root / "inbox", 500, 10**9))
        for i in range(3):  # frames two models disagreed on, as a running device keeps them
            self.review.consider(inbox_frame(scene(i), i), [analysis(10), analysis(20, "beside")], now=float(i))

    def inbox(self) -> Inbox:
        return self.review

    def model_checks(self) -> dict[str, Any]:
        return monitoring_settings(self._parts())

    def configure_model_checks(self, changes: dict[str, Any]) -> dict[str, Any]:
        return configure_monitoring(self._parts(), changes)

    def _parts(self) -> Any:
        """What the settings API reads of a device: its config, its pipelines' stages, its inbox."""
        self._config = getattr(self, "_config", None) or DeviceConfig(data_dir=self.cache_dir.parent / "device")
        stages = SimpleNamespace(stages=[DriftStage(self._config.drift)])
        return SimpleNamespace(config=self._config, feed=SimpleNamespace(pipelines=[stages]), inbox=self.review)


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    root = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
        app = make_app(root / "data", FullRuntime(root), max_image_pixels=2_000_000, max_upload_mb=5)
        yield app


@pytest.fixture(scope="module")
def login(fuzz_app: Flask) -> dict[str, Any]:
    """The session cookie and CSRF header of a logged-in user with a project chosen."""
    client = fuzz_app.test_client()
    auth = Auth(client)
    assert auth.login().status_code == 302  # type: ignore[attr-defined]
    slug = auth.project("Fuzz")
    image = _upload(client, auth, slug)
    experiment = auth.json("POST", "/panel/api/experiments/start", {"name": "fuzz"}).get_json()["id"]  # type: ignore[attr-defined]
    auth.json("POST", "/panel/api/experiments/stop", {})  # start may succeed again
    cookie = client.get_cookie("session")
    assert cookie is not None
    return {"cookies": {"session": cookie.value}, "headers": {"X-CSRF-Token": auth.token()},
            "new_image": lambda: _upload(client, auth, slug), "ids": {"slug": slug, "image_id": image, "experiment_id": experiment, "job_id": "job-1",
                    "item_id": fuzz_app.extensions["scopehive.runtime"].inbox().store.items()[0].id}}


def _upload(client: FlaskClient, auth: Auth, slug: str) -> str:
    import cv2

    png = cv2.imencode(".png", np.full((48, 64, 3), 128, np.uint8))[1].tobytes()
    response = client.post(f"/panel/api/projects/{slug}/images", data={"files": (io.BytesIO(png), "a.png")},
                           headers={"X-CSRF-Token": auth.token()}, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_data(as_text=True)
    return str(response.get_json()["images"][0]["id"])


@pytest.fixture(scope="module")
def api(fuzz_app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)


def strict_json(text: str) -> Any:
    """Parse as a browser's JSON.parse would: NaN, Infinity and -Infinity are not JSON."""
    def refuse(token: str) -> Any:
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def check_answer(status: int, content_type: str, body: bytes, where: str) -> None:
    """What every answer of the JSON API must be (also used by the regression tests)."""
    assert status < 500, f"{where}: {status} {body[:300]!r}"
    if "json" in content_type:
        payload = strict_json(body.decode("utf-8"))
        if status >= 400:
            assert isinstance(payload, dict) and isinstance(payload.get("error"), str) and payload["error"].strip(), \
                f"{where}: a {status} without a message: {body[:300]!r}"
    else:
        assert status < 400 or status == 405 and not body, f"{where}: a {status} that is not JSON ({content_type}): {body[:300]!r}"
        assert status < 300 or status >= 400, f"{where}: a {status} redirect from the JSON API"


def operations(app: Flask, endpoint: str) -> list[tuple[str, str]]:
    """(OpenAPI path, method) of the routes of one declared endpoint."""
    found = []
    for rule in app.url_map.iter_rules(endpoint):
        path, _ = openapi.openapi_path(rule.rule)
        found += [(path, m) for m in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    return found


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize("endpoint", sorted(openapi.OPERATIONS))
def test_json_api_survives_fuzzing(fuzz_app: Flask, api: Any, login: dict[str, Any], endpoint: str, mode: GenerationMode) -> None:
    """(Not schemathesis' pytest plugin: its from_fixture loader does not run under pytest 9.)"""
    routes = operations(fuzz_app, endpoint)
    assert routes, f"{endpoint} is declared in device/openapi.py but the app has no such route"
    for path, method in routes:
        @settings(max_examples=FUZZ_EXAMPLES, deadline=FUZZ_DEADLINE_MS, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=api[path][method].as_strategy(generation_mode=mode), real=st.booleans())
        def attack(case: Any, real: bool) -> None:
            if real:  # half the cases name a project, image and experiment that exist
                ids = dict(login["ids"], image_id=login["new_image"]() if case.method == "DELETE" else login["ids"]["image_id"])
                case.path_parameters = {**(case.path_parameters or {}), **{
                    k: v for k, v in ids.items() if k in (case.path_parameters or {})}}
            response = case.call(headers=dict(login["headers"]), cookies=dict(login["cookies"]))
            content_type = (response.headers.get("content-type") or [""])[0]
            check_answer(response.status_code, content_type, response.content, f"{case.method} {case.formatted_path}")

        try:
            attack()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to get wrong: no parameters, no body
