"""Roll out from the training job's page: a real trainer worker with a fleet (the balena API stood in
by FakeBalena, the models' store a moto S3 server), a real tiny training, the panel on Flask's client.

The three fleet devices are played by a thread that does what a device's watcher does: switch to
its assigned model and say so on its `scopehive.model.running` tag (tests/fleet/test_simulated_fleet.py
runs real device processes; here the subject is the trainer's and the panel's side).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from device.training_client import TrainerSettings
from tests.device.panel.conftest import PASSWORD
from tests.device.panel.test_training import Device, flashes
from tests.fleet.fake_balena import FakeBalena
from tests.trainer.worker_support import QUICK, SHARED, TOKEN_A, TrainerWorker
from trainer.fleet.balena_api import ASSIGN_TAG, RUNNING_TAG

FLEET = "lab/hive"
OLD = "synthetic-cells:0.1.0"
NAMES = ["scope-a", "scope-b", "scope-c"]  # canaries are chosen by name: scope-a goes first


class Watchers:
    """The fleet's devices: each switches to its assignment and reports it, unless told to hold."""

    def __init__(self, api: FakeBalena) -> None:
        self.api = api
        self.answering = threading.Event()
        self.answering.set()
        self.acks: list[tuple[str, str, dict[str, str | None]]] = []  # device, model, every device's assignment then
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def ids(self) -> dict[str, int]:
        return {d["device_name"]: d["id"] for d in self.api.tables["device"]}

    def assigned(self) -> dict[str, str | None]:
        return {name: self.api.tag(i, ASSIGN_TAG) for name, i in self.ids().items()}

    def running(self) -> dict[str, str | None]:
        return {name: self.api.tag(i, RUNNING_TAG) for name, i in self.ids().items()}

    def _set_running(self, device_id: int, value: str) -> None:
        with self.api.lock:
            for row in self.api.tables["device_tag"]:
                if row["device"] == device_id and row["tag_key"] == RUNNING_TAG:
                    row["value"] = value
                    return
        self.api.add("device_tag", device=device_id, tag_key=RUNNING_TAG, value=value)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            if not self.answering.is_set():
                continue
            for name, device_id in self.ids().items():
                assigned = self.api.tag(device_id, ASSIGN_TAG)
                if assigned and assigned != self.api.tag(device_id, RUNNING_TAG):
                    self.acks.append((name, assigned, self.assigned()))
                    self._set_running(device_id, assigned)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
    return value


def fleet_env(api_url: str, api: FakeBalena, s3: str) -> dict[str, str]:
    return {"SCOPEHIVE_TRAINER_FLEET": FLEET, "BALENA_API_KEY": api.user_token, "BALENA_API_URL": api_url,
            "SCOPEHIVE_STORE": f"s3://fleet-models?endpoint={s3}&secure=0", "SCOPEHIVE_S3_ACCESS_KEY": "k",
            "SCOPEHIVE_S3_SECRET_KEY": "s", "SCOPEHIVE_TRAINER_FLEET_WAIT_S": "30", "SCOPEHIVE_TRAINER_FLEET_POLL_S": "0.2",
            "GRAFANA_URL": ""}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[tuple[TrainerWorker, Watchers, dict[str, str]]]:
    api = FakeBalena()
    fleet_id = api.add_fleet(FLEET)
    for index, name in enumerate(NAMES):
        device_id = api.add_device(fleet_id, f"{index + 1:x}" * 32, name, "jetson-nano")
        api.add("device_tag", device=device_id, tag_key=RUNNING_TAG, value=OLD)
    env = fleet_env(api.start(), api, s3_endpoint)
    watchers = Watchers(api)
    worker = TrainerWorker(tmp_path_factory.mktemp("fleet-trainer")).start(**env)
    try:
        yield worker, watchers, env
    finally:
        worker.stop()
        watchers.stop()
        api.stop()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, fleet: tuple[TrainerWorker, Watchers, dict[str, str]]) -> Iterator[tuple[Device, str]]:
    """One project trained for 1 epoch against the running demo model (so it is worse): (device, job id)."""
    worker = fleet[0]
    mp = pytest.MonkeyPatch()
    mp.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
    mp.setenv("SCOPEHIVE_TRAINER_TOKEN", SHARED)
    try:
        device = Device(tmp_path_factory.mktemp("rollout"), worker.store, TrainerSettings(url=worker.url, options={**QUICK, "epochs": 1}))
        job_id, _ = device.start(device.check())
        device.wait(job_id, ("done", "failed", "cancelled", "interrupted"))
        yield device, job_id
    finally:
        mp.undo()


def _call(worker: TrainerWorker, method: str, path: str, body: Any = None) -> Any:
    return worker.call(method, path, SHARED, body=body, device="scope-1")


def test_a_worse_model_rolls_out_only_with_the_named_confirmation_canary_first_and_rolls_back(
        fleet: tuple[TrainerWorker, Watchers, dict[str, str]], trained: tuple[Device, str]) -> None:
    worker, watchers, _ = fleet
    device, job_id = trained
    job = device.job(job_id)
    assert job["state"] == "done", job["message"]
    worse = job["result"]["comparison"]["worse_classes"]
    assert worse, job["result"]["comparison"]  # 1 epoch against the demo model: worse, as the test needs
    named, label = ", ".join(worse), job["result"]["model"]["label"]
    assert _call(worker, "GET", "/v1/info").json()["fleet"]["name"] == FLEET
    page = device.page(f"/panel/training/jobs/{job_id}")
    assert f"Roll out to fleet {FLEET} (canary first)" in page and 'id="no-fleet"' not in page
    url = f"/panel/training/jobs/{job_id}/rollout"

    for confirmation in ({}, {"confirm_worse": "yes"}, {"confirm_worse": worse[0] + ", nothing"}):
        device.auth.post(url, data=confirmation)
        assert f"Not rolled out: on the held-out frames this model is worse than the running one on {named}" in flashes(device.client)
    refused = _call(worker, "POST", f"/v1/jobs/{job_id}/rollout", {})  # the trainer asks for it too
    assert refused.status_code == 422 and named in refused.json()["error"]
    assert device.job(job_id)["rollout"] is None and set(watchers.assigned().values()) == {None}  # nothing changed

    watchers.answering.clear()  # the canary takes its time: the rollout waits in the canary stage
    device.auth.post(url, data={"confirm_worse": named})
    assert f"Rolling {label} out to fleet {FLEET}: the canary first" in flashes(device.client)
    wait_for("the canary stage", lambda: (device.job(job_id)["rollout"] or {}).get("state") == "canary")
    wait_for("the canary's assignment", lambda: watchers.assigned()["scope-a"] == label)
    assert [watchers.assigned()[n] for n in NAMES[1:]] == [None, None]
    page = device.page(f"/panel/training/jobs/{job_id}")
    assert 'id="rollout" data-state="canary"' in page and 'http-equiv="refresh"' in page
    again = _call(worker, "POST", f"/v1/jobs/{job_id}/rollout", {"confirm_worse": named})
    assert again.status_code == 409 and "already running" in again.json()["error"]
    device.auth.post(f"/panel/training/jobs/{job_id}/rollback")
    assert "Not rolled back: a rollout to fleet lab/hive is already running" in flashes(device.client)
    watchers.answering.set()

    done = wait_for("the rollout to end", lambda: (r := device.job(job_id)["rollout"]) and r["state"] not in ("canary", "rolling") and r)
    assert done["state"] == "done", done["message"]
    assert done["message"].startswith(f"{label} runs on 3 of 3 device(s) of fleet {FLEET}")
    assert watchers.running() == dict.fromkeys(NAMES, label)
    canary_ack = next(snapshot for name, model, snapshot in watchers.acks if name == "scope-a" and model == label)
    assert [canary_ack[n] for n in NAMES[1:]] == [None, None]  # the canary switched before the rest were assigned
    assert [s["name"] for s in done["stages"]] == ["canary", "rest"] and len(done["stages"][0]["switched"]) == 1
    page = device.page(f"/panel/training/jobs/{job_id}")
    assert 'id="rollout" data-state="done"' in page and 'id="roll-back"' in page and 'http-equiv="refresh"' not in page

    device.auth.post(f"/panel/training/jobs/{job_id}/rollback")
    assert "Rolling back" in flashes(device.client)
    back = wait_for("the rollback", lambda: (r := device.job(job_id)["rollout"]) and r["state"] != "rolling_back" and r)
    assert back["state"] == "rolled_back" and OLD in back["message"], back["message"]
    assert watchers.running() == dict.fromkeys(NAMES, OLD) and watchers.assigned() == dict.fromkeys(NAMES, OLD)
    page = device.page(f"/panel/training/jobs/{job_id}")
    assert 'data-state="rolled_back"' in page and 'id="roll-back"' not in page
    twice = _call(worker, "POST", f"/v1/jobs/{job_id}/rollback")
    assert twice.status_code == 409 and "rolled back already" in twice.json()["error"]


def test_only_a_done_job_of_the_calling_device_rolls_out(fleet: tuple[TrainerWorker, Watchers, dict[str, str]],
                                                         trained: tuple[Device, str]) -> None:
    worker, watchers, _ = fleet
    device, job_id = trained
    other = worker.call("POST", f"/v1/jobs/{job_id}/rollout", TOKEN_A, body={})  # dev-a's token, scope-1's job
    assert other.status_code == 404 and "no job" in other.json()["error"]
    bad = _call(worker, "POST", f"/v1/jobs/{job_id}/rollout", {"canary": 0})
    assert bad.status_code == 400 and "'canary'" in bad.json()["error"]
    request = device.job(job_id)["request"]
    unfinished = _call(worker, "POST", "/v1/jobs", {"project": device.slug, "package": request["package"],
                                                    "options": {**QUICK, "epochs": 300}}).json()
    response = _call(worker, "POST", f"/v1/jobs/{unfinished['id']}/rollout", {})
    assert response.status_code == 409 and "only a done job's model can be rolled out" in response.json()["error"]
    _call(worker, "POST", f"/v1/jobs/{unfinished['id']}/cancel", {})
    wait_for("the cancel", lambda: _call(worker, "GET", f"/v1/jobs/{unfinished['id']}").json()["state"] == "cancelled")
    assert _call(worker, "GET", f"/v1/jobs/{unfinished['id']}").json()["rollout"] is None


def test_without_a_fleet_the_button_is_absent_and_the_page_says_how(fleet: tuple[TrainerWorker, Watchers, dict[str, str]],
                                                                    trained: tuple[Device, str]) -> None:
    worker, _, _ = fleet
    device, job_id = trained
    worker.stop()
    worker.start()  # the same queue, no fleet in the environment
    info = _call(worker, "GET", "/v1/info").json()
    assert info["fleet"] is None and "SCOPEHIVE_TRAINER_FLEET" in info["fleet_setup"]
    refused = _call(worker, "POST", f"/v1/jobs/{job_id}/rollout", {})
    assert refused.status_code == 409
    assert all(v in refused.json()["error"] for v in ("SCOPEHIVE_TRAINER_FLEET", "BALENA_API_KEY", "SCOPEHIVE_STORE"))
    page = device.page(f"/panel/training/jobs/{job_id}")
    assert 'id="roll-out"' not in page and 'id="no-fleet"' in page and "SCOPEHIVE_TRAINER_FLEET=" in page
    assert 'data-state="rolled_back"' in page  # the job keeps its rollout's outcome across the restart


def test_a_half_configured_fleet_stops_the_worker_saying_what_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BALENA_", "SCOPEHIVE_"))}
    env.update({"SCOPEHIVE_TRAINER_TOKEN": SHARED, "SCOPEHIVE_TRAINER_FLEET": FLEET})
    done = subprocess.run([sys.executable, "-m", "trainer", "worker", "--store", f"file://{tmp_path}", "--work", str(tmp_path / "w"),
                           "--port", "0"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "BALENA_API_KEY is not" in done.stderr


def test_a_queue_from_before_rollouts_gains_the_column_and_keeps_its_jobs(tmp_path: Path) -> None:
    from trainer.jobs import JobQueue

    path = tmp_path / "jobs.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("CREATE TABLE jobs (id TEXT PRIMARY KEY, device TEXT NOT NULL, project TEXT NOT NULL, state TEXT NOT NULL, "
                      "created REAL NOT NULL, started REAL, finished REAL, request TEXT NOT NULL, plan TEXT NOT NULL, "
                      "progress TEXT NOT NULL DEFAULT '{}', result TEXT, message TEXT NOT NULL DEFAULT '', cancel INTEGER NOT NULL DEFAULT 0);"
                      "INSERT INTO jobs (id, device, project, state, created, request, plan) VALUES ('abcdef012345', 'd', 'p', 'done', 1, '{}', '{}');")
    old.commit()
    old.close()
    queue = JobQueue(path)
    assert queue.get("d", "abcdef012345").public()["rollout"] is None  # type: ignore[union-attr]
    queue.set_rollout("abcdef012345", {"state": "done"})
    assert queue.get("d", "abcdef012345").rollout == {"state": "done"}  # type: ignore[union-attr]
    queue.close()
