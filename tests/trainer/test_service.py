"""The trainer service against a real `python -m trainer worker` on loopback, with tiny real trainings."""

from __future__ import annotations

import json
import os
import signal
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.grafana.fake_grafana import TOKEN as GRAFANA_TOKEN
from tests.grafana.fake_grafana import FakeGrafana, running_grafana
from tests.trainer.worker_support import (
    QUICK,
    SHARED,
    TOKEN_B,
    TrainerWorker,
    training_children,
    write_package,
)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[TrainerWorker]:
    w = TrainerWorker(tmp_path).start()
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("service-packages")
    return {"train": write_package(root / "train.zip", 8, seed=1), "held": write_package(root / "held.zip", 3, seed=2)}


def _submit(worker: TrainerWorker, packages: dict[str, Path], options: dict[str, object], held: bool = False) -> dict[str, Any]:
    body: dict[str, object] = {"project": "blood", "package": worker.put("training/dev-a/p/train.zip", packages["train"]),
                               "options": {**QUICK, **options}}
    if held:
        body["held_out"] = worker.put("training/dev-a/p/held.zip", packages["held"])
    response = worker.call("POST", "/v1/jobs", body=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def marked_worker(tmp_path: Path) -> Iterator[tuple[TrainerWorker, FakeGrafana]]:
    with running_grafana() as grafana:
        w = TrainerWorker(tmp_path).start(GRAFANA_URL=grafana.url, GRAFANA_TOKEN=GRAFANA_TOKEN)
        try:
            yield w, grafana
        finally:
            w.stop()


def test_a_job_goes_from_queued_through_training_to_a_bundle_in_the_store(marked_worker: tuple[TrainerWorker, FakeGrafana],
                                                                          packages: dict[str, Path]) -> None:
    from device.models.bundle import load_bundle

    worker, grafana = marked_worker
    job = _submit(worker, packages, {"epochs": 2}, held=True)
    assert job["state"] in ("queued", "running")
    assert job["plan"]["images"] == 8 and any("training images" in w for w in job["plan"]["warnings"])
    seen_epochs = set()

    def finished(j: dict[str, Any]) -> bool:
        seen_epochs.add(j["progress"].get("epoch"))
        return j["state"] in ("done", "failed", "cancelled", "interrupted")

    done = worker.wait(str(job["id"]), finished)
    assert done["state"] == "done", done["message"]
    assert seen_epochs & {1, 2}  # progress was visible while it trained
    history = done["progress"]["history"]
    assert [h["epoch"] for h in history] == [1, 2] and all(h["loss"] > 0 for h in history)
    result = done["result"]
    assert result["held_out"]["images"] == 3 and "per_class" in result["held_out"]["new"]
    bundle_zip = worker.store / result["bundle"]
    assert zipfile.ZipFile(bundle_zip).namelist()[-1] == "model.json"  # marker last
    bundle = load_bundle(bundle_zip, worker.root / "unpacked")
    assert bundle.card.classes == ["cell", "crystal", "debris"]
    assert str(worker.work) not in json.dumps(done)  # no trainer paths in what the device shows
    # another device sees nothing of it
    assert worker.call("GET", f"/v1/jobs/{job['id']}", TOKEN_B).status_code == 404
    assert worker.call("GET", "/v1/jobs", TOKEN_B).json()["jobs"] == []
    assert [j["id"] for j in worker.call("GET", "/v1/jobs?project=blood").json()["jobs"]] == [job["id"]]
    assert result["warm_start"].startswith("Cold start: the device runs no model")
    worst = result["held_out"]["worst"]
    assert all(w["count_error"] > 0 and w["file"].endswith(".png") for w in worst)
    if worst:
        assert (worker.store / result["held_out_worst_png"]).read_bytes()[:4] == b"\x89PNG"
    _next_job_starts_from_the_running_models_weights_and_is_compared(worker, packages, result["bundle"])
    deadline = time.monotonic() + 15  # the end mark follows the job's final state
    while sum(a["text"].startswith("Training finished:") for a in grafana.accepted) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    texts = [a["text"] for a in grafana.accepted]  # the dashboards show each job's start and its end with the verdict
    assert all({"scopehive", "training", "device:dev-a"} <= set(a["tags"]) for a in grafana.accepted), grafana.accepted
    assert sum(t.startswith("Training started: project blood (device dev-a") for t in texts) == 2, texts
    finished = [t for t in texts if t.startswith("Training finished:")]
    assert len(finished) == 2 and "the device runs no model of this project to compare with" in finished[0]
    assert any(w in finished[1] for w in ("better than", "worse than", "the same as")), finished[1]


def _next_job_starts_from_the_running_models_weights_and_is_compared(worker: TrainerWorker, packages: dict[str, Path], running: str) -> None:
    body = {"project": "blood", "package": worker.put("training/dev-a/p/train.zip", packages["train"]),
            "held_out": worker.put("training/dev-a/p/held.zip", packages["held"]), "baseline": running,
            "options": {**QUICK, "epochs": 1}}
    second = worker.call("POST", "/v1/jobs", body=body).json()
    done = worker.wait(str(second["id"]), lambda j: j["state"] in ("done", "failed", "cancelled", "interrupted"))
    assert done["state"] == "done", done["message"]
    assert done["result"]["warm_start"].startswith("Warm start: training started from the weights of the running model")
    assert any("started from the running model's weights" in n for n in done["progress"].get("notes", []))
    assert done["result"]["comparison"]["verdict"] in ("better", "worse", "same")
    cold = worker.call("POST", "/v1/jobs", body={**body, "warm_start": "yes"})
    assert cold.status_code == 400 and "warm_start" in cold.json()["error"]


def test_a_second_job_queues_behind_the_first_and_both_can_be_cancelled(worker: TrainerWorker, packages: dict[str, Path]) -> None:
    first = _submit(worker, packages, {"epochs": 300})
    second = _submit(worker, packages, {"epochs": 2})
    assert second["state"] == "queued" and second["queue_position"] >= 1
    running = worker.wait(str(first["id"]), lambda j: (j["progress"].get("epoch") or 0) >= 1)
    assert running["state"] == "running" and running["progress"]["eta_s"] > 0
    queued = worker.call("GET", f"/v1/jobs/{second['id']}").json()
    assert queued["state"] == "queued" and queued["queue_position"] == 1

    cancelled = worker.call("POST", f"/v1/jobs/{second['id']}/cancel").json()
    assert cancelled["state"] == "cancelled"
    assert worker.call("POST", f"/v1/jobs/{first['id']}/cancel", TOKEN_B).status_code == 404  # not B's to cancel
    worker.call("POST", f"/v1/jobs/{first['id']}/cancel")
    ended = worker.wait(str(first["id"]), lambda j: j["state"] != "running", timeout=60)
    assert ended["state"] == "cancelled" and "nothing was published" in ended["message"]
    assert not list((worker.store / "training" / "dev-a").glob("jobs/*/bundle.zip"))
    deadline = time.monotonic() + 15
    while training_children(str(first["id"])) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert training_children(str(first["id"])) == []


def test_a_sigkilled_worker_leaves_no_training_behind_and_the_job_ends_interrupted_with_the_reason(
        worker: TrainerWorker, packages: dict[str, Path]) -> None:
    job = _submit(worker, packages, {"epochs": 300})
    worker.wait(str(job["id"]), lambda j: (j["progress"].get("epoch") or 0) >= 1)
    assert training_children(str(job["id"]))
    worker.sigkill()
    deadline = time.monotonic() + 15
    while training_children(str(job["id"])) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert training_children(str(job["id"])) == []  # the training died with its worker
    worker.start()
    after = worker.call("GET", f"/v1/jobs/{job['id']}").json()
    assert after["state"] == "interrupted"
    assert "stopped unexpectedly" in after["message"] and "epoch" in after["message"] and "press Train again" in after["message"]
    assert after["result"] is None and not list((worker.store / "training").glob("dev-a/jobs/*/bundle.zip"))


def test_wrong_or_missing_token_is_401_and_the_shared_token_needs_a_device_name(worker: TrainerWorker) -> None:
    for token in ("not-the-token-at-all-0000", ""):
        response = worker.call("GET", "/v1/jobs", token)
        assert response.status_code == 401 and "trainer token" in response.json()["error"]
    assert worker.call("POST", "/v1/jobs", "wrong-token-0123456789", body={}).status_code == 401
    assert worker.call("GET", "/v1/jobs", SHARED).status_code == 400  # shared token, no X-ScopeHive-Device
    assert worker.call("GET", "/v1/jobs", SHARED, device="scope-7").json() == {"jobs": []}
    assert worker.call("GET", "/healthz", "").json() == {"ok": True}


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"project": "blood", "package": "training/dev-a/missing.zip"}, 422, "finds no 'training/dev-a/missing.zip'"),
    ({"project": "blood", "package": "training/dev-b/theirs.zip"}, 403, "not under this device's prefix"),
    ({"project": "blood", "package": "../etc/passwd"}, 400, "not allowed"),
    ({"project": "blood", "package": "training/dev-a/p/train.zip", "options": {"epochs": -1}}, 400, "training options refused"),
    ({"project": "blood", "package": "training/dev-a/p/train.zip", "options": {"weights": "/etc/passwd"}}, 400, "cannot be set from a device"),
    ({"project": "blood", "package": "training/dev-a/p/train.zip", "extra": 1}, 400, "unknown field"),
    ({"project": "no spaces!", "package": "training/dev-a/p/train.zip"}, 400, "'project'"),
    ([1, 2], 400, "JSON object"),
])
def test_bad_requests_get_a_clear_4xx(worker: TrainerWorker, packages: dict[str, Path], body: object, status: int, says: str) -> None:
    worker.put("training/dev-a/p/train.zip", packages["train"])
    response = worker.call("POST", "/v1/jobs", body=body)
    assert response.status_code == status and says in response.json()["error"]
    assert worker.call("GET", "/v1/jobs").json()["jobs"] == []


def test_a_package_the_trainer_refuses_comes_back_at_once_saying_what_is_wrong(worker: TrainerWorker, packages: dict[str, Path],
                                                                               tmp_path: Path) -> None:
    broken = _zip(tmp_path / "broken.zip", {"manifest.json": b"{}", "annotations.json": b"{}"})
    response = worker.call("POST", "/v1/jobs", body={"project": "blood", "package": worker.put("training/dev-a/broken.zip", broken)})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error.startswith("the trainer refuses the package: training/dev-a/broken.zip: manifest.json is invalid")
    assert str(worker.work) not in error  # the trainer's own folders stay its own
    not_zip = tmp_path / "notzip.zip"
    not_zip.write_bytes(b"hello")
    response = worker.call("POST", "/v1/plan", body={"project": "blood", "package": worker.put("training/dev-a/n.zip", not_zip)})
    assert response.status_code == 422 and "not a readable zip archive" in response.json()["error"]
    assert worker.call("GET", "/v1/jobs").json()["jobs"] == []
    assert not any((worker.work / "staging").iterdir())  # a refused job leaves nothing behind


def test_the_plan_endpoint_says_what_would_be_trained_without_queueing(worker: TrainerWorker, packages: dict[str, Path]) -> None:
    body = {"project": "blood", "package": worker.put("training/dev-a/p/train.zip", packages["train"]), "options": {"epochs": 3}}
    plan = worker.call("POST", "/v1/plan", body=body).json()
    assert plan["images"] == 8 and plan["epochs"] == 3 and sum(plan["boxes_per_class"].values()) > 0
    assert any("validation images" in w for w in plan["warnings"])
    assert worker.call("GET", "/v1/jobs").json()["jobs"] == []


def test_the_worker_will_not_start_without_a_token(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPEHIVE_TRAINER_TOKEN")}
    done = subprocess.run([sys.executable, "-m", "trainer", "worker", "--store", f"file://{tmp_path}", "--work", str(tmp_path / "w"),
                           "--port", "0"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no token: set SCOPEHIVE_TRAINER_TOKEN" in done.stderr


def test_sigterm_ends_the_running_job_as_interrupted(worker: TrainerWorker, packages: dict[str, Path]) -> None:
    job = _submit(worker, packages, {"epochs": 300})
    worker.wait(str(job["id"]), lambda j: (j["progress"].get("epoch") or 0) >= 1)
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(60) == 0
    worker.start()
    after = worker.call("GET", f"/v1/jobs/{job['id']}").json()
    assert after["state"] == "interrupted" and "the trainer service was stopped" in after["message"]
    assert json.loads(json.dumps(after))["result"] is None
