"""The panel's Train page against a real trainer worker on loopback (tiny real trainings)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from device.config import DeviceConfig
from device.training_client import TrainerSettings
from device.web_settings import PanelSettings
from tests.device.panel.conftest import PASSWORD, Auth
from tests.device.panel.helpers import SyntheticRuntime
from tests.trainer.worker_support import QUICK, SHARED, TrainerWorker, free_port

DEMO = Path(__file__).resolve().parents[3] / "device" / "models" / "demo"
CLASSES = ["cell", "crystal", "debris"]


def make_app(data_dir: Path, runtime: SyntheticRuntime, store: Path, trainer: TrainerSettings | None) -> Flask:
    from device.web import create_app

    config = DeviceConfig(data_dir=data_dir, device_name="scope-1", model=str(DEMO),  # type: ignore[call-arg]
                          panel=PanelSettings(storage=f"file://{store}"), trainer=trainer or TrainerSettings())
    app = create_app(config, runtime)  # type: ignore[arg-type]
    app.config["TESTING"] = True
    return app


def fill_project(app: Flask, slug: str, count: int, boxes: bool = True) -> None:
    """Annotated synthetic frames, straight into the project's store (as an import would)."""
    from device.datasets.package import synthetic_images
    from device.panel.records import Box

    panel = app.extensions["scopehive.panel"]
    project = panel.projects.project(slug)
    ids = [c.id for c in project.classes]
    for image in synthetic_images(count, seed=4, width=320, height=240, density=40):
        meta = panel.projects.add_image(slug, image.data, image.file_name, "import")
        found = [Box(x1=float(x1), y1=float(y1), x2=float(x2), y2=float(y2), class_id=ids[int(c)])
                 for (x1, y1, x2, y2), c in zip(image.boxes.xyxy.tolist(), image.boxes.class_ids.tolist(), strict=True)] if boxes else []
        panel.projects.save_annotation(slug, meta.id, 0, found, negative=not found)


def flashes(client: FlaskClient) -> str:
    with client.session_transaction() as session:
        return " ".join(str(m[1]) for m in session.get("_flashes", []))


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainerWorker]:
    w = TrainerWorker(tmp_path_factory.mktemp("panel-trainer")).start()
    try:
        yield w
    finally:
        w.stop()


class Device:
    """A panel app logged in, with one project of annotated frames, pointed at a trainer."""

    def __init__(self, tmp: Path, store: Path, trainer: TrainerSettings | None, images: int = 10, boxes: bool = True) -> None:
        self.runtime = SyntheticRuntime(tmp / "runtime-cache")
        self.runtime.switch_model(DEMO)
        self.app = make_app(tmp / "data", self.runtime, store, trainer)
        self.client = self.app.test_client()
        self.auth = Auth(self.client)
        self.auth.login()
        self.slug = self.auth.project("Smears", ", ".join(CLASSES))
        fill_project(self.app, self.slug, images, boxes)

    def page(self, url: str) -> str:
        response = self.client.get(url)
        assert response.status_code == 200, response.status_code
        return response.get_data(as_text=True)

    def check(self) -> str:
        response = self.auth.post("/panel/training/check")
        return response.get_data(as_text=True)  # type: ignore[attr-defined, no-any-return]

    def start(self, review: str) -> tuple[str, str]:
        fields = dict(re.findall(r'<input type="hidden" name="(package|held_out|baseline)" value="([^"]+)">', review))
        if 'name="warm_start" value="1" checked' in review:  # as a browser sends the ticked box
            fields["warm_start"] = "1"
        response = self.auth.post("/panel/training/start", data=fields)
        location = response.headers["Location"]  # type: ignore[attr-defined]
        return location.rsplit("/", 1)[-1], flashes(self.client)

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.client.get(f"/panel/api/training/jobs/{job_id}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()  # type: ignore[no-any-return]

    def wait(self, job_id: str, states: tuple[str, ...], timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["state"] in states:
                return job
            time.sleep(1)
        raise AssertionError(f"job {job_id} stayed {job['state']}: {job['message']}")


@pytest.fixture
def env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
    monkeypatch.setenv("SCOPEHIVE_TRAINER_TOKEN", SHARED)


def test_without_a_trainer_the_train_page_explains_how_to_start_one(tmp_path: Path, env_token: None) -> None:
    device = Device(tmp_path, tmp_path / "store", None, images=3)
    page = device.page("/panel/training")
    assert "No trainer is set up yet" in page and "python -m trainer worker --store" in page
    assert f"file://{tmp_path / 'store'}" in page  # the command names this device's own store
    assert re.search(r"boxes to train on</th>.*?<td>cell</td><td>\d+</td>", page, re.S)
    response = device.auth.post("/panel/training/check")
    assert response.status_code == 302 and "No trainer is configured" in flashes(device.client)  # type: ignore[attr-defined]


def test_an_unreachable_trainer_is_named_with_what_to_do(tmp_path: Path, env_token: None) -> None:
    device = Device(tmp_path, tmp_path / "store", TrainerSettings(url=f"http://127.0.0.1:{free_port()}", timeout_s=5), images=3)
    page = device.page("/panel/training")
    assert "does not answer" in page and "python -m trainer worker" in page
    device.check()
    assert "does not answer" in flashes(device.client) and device.runtime.model_card().name == "synthetic-cells"  # type: ignore[union-attr]


def test_a_wrong_token_says_so(tmp_path: Path, env_token: None, worker: TrainerWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPEHIVE_TRAINER_TOKEN", "not-what-the-trainer-has-0000")
    device = Device(tmp_path, worker.store, TrainerSettings(url=worker.url), images=3)
    device.check()
    assert "The trainer refused this device's token" in flashes(device.client)


def test_a_project_without_boxes_is_refused_before_anything_is_sent(tmp_path: Path, env_token: None, worker: TrainerWorker) -> None:
    device = Device(tmp_path, worker.store, TrainerSettings(url=worker.url), images=3, boxes=False)
    device.check()
    assert "nothing to train on yet: annotate boxes" in flashes(device.client)
    assert not list((worker.store / "training").glob("scope-1/smears/*.zip"))


def test_a_trainer_on_another_store_refuses_with_what_to_do(tmp_path: Path, env_token: None, worker: TrainerWorker) -> None:
    device = Device(tmp_path, tmp_path / "elsewhere", TrainerSettings(url=worker.url), images=4)
    device.check()
    message = flashes(device.client)
    assert "The trainer refused the package" in message and "must share one object store" in message


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, worker: TrainerWorker) -> Iterator[tuple[Device, str, str]]:
    """One project trained for 2 epochs, the demo model running: (device, job id, check page)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
    mp.setenv("SCOPEHIVE_TRAINER_TOKEN", SHARED)
    try:
        device = Device(tmp_path_factory.mktemp("trained"), worker.store, TrainerSettings(url=worker.url, options={**QUICK, "epochs": 2}))
        review = device.check()
        job_id, _ = device.start(review)
        device.wait(job_id, ("done", "failed", "cancelled", "interrupted"))
        yield device, job_id, review
    finally:
        mp.undo()


def test_check_shows_what_will_be_trained_and_the_plans_warnings(trained: tuple[Device, str, str]) -> None:
    _, _, review = trained
    assert "<b>8 images</b>" in review and "2 held out for the comparison" in review  # 10 annotated, 2 put aside
    assert "The trainer warns" in review and re.search(r"only \d training images", review)
    assert "Compared with: model synthetic-cells" in review


def test_progress_then_a_side_by_side_result_against_the_running_model(trained: tuple[Device, str, str]) -> None:
    device, job_id, _ = trained
    job = device.job(job_id)
    assert job["state"] == "done", job["message"]
    assert [h["epoch"] for h in job["progress"]["history"]] == [1, 2]
    page = device.page(f"/panel/training/jobs/{job_id}")
    assert 'id="comparison"' in page and "AP@0.5 running" in page
    verdicts = re.findall(r'<tr data-class="(\w+)" data-verdict="(\w+)">', page)
    assert [name for name, _ in verdicts] == CLASSES and {v for _, v in verdicts} <= {"better", "worse", "same"}
    assert 'id="verdict" data-verdict="' in page and "Verdict: worse than</b> the running model synthetic-cells" in page
    assert page.count('class="bland-altman"') == 3
    # warm start was asked for, but the demo bundle predates it: the result says it started cold and why
    assert "Cold start: the running model&#39;s bundle carries no training weights" in page
    assert 'id="worst-frames"' in page
    if "<table id=\"worst-frames\">" in page:
        worst = device.client.get(f"/panel/training/jobs/{job_id}/held-out-worst.png")
        assert worst.status_code == 200 and worst.data.startswith(b"\x89PNG")
    png = device.client.get(f"/panel/training/jobs/{job_id}/report.png")
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    listing = device.page("/panel/training")
    assert f'data-job="{job_id}" data-state="done"' in listing


def test_a_worse_model_runs_only_with_the_confirmation_that_names_its_worse_classes(trained: tuple[Device, str, str]) -> None:
    device, job_id, _ = trained
    comparison = device.job(job_id)["result"]["comparison"]
    assert comparison["verdict"] == "worse", comparison  # 2 epochs against the demo model: worse, as the test needs
    worse = ", ".join(comparison["worse_classes"])
    url = f"/panel/training/jobs/{job_id}/deploy"
    page = device.page(f"/panel/training/jobs/{job_id}")
    assert f'name="confirm_worse" value="{worse}"' in page
    for confirmation in ({}, {"confirm_worse": "yes"}, {"confirm_worse": comparison["worse_classes"][0] + ", nothing"}):
        device.auth.post(url, data=confirmation)
        assert f"Not switched: on the held-out frames this model is worse than the running one on {worse}" in flashes(device.client)
        assert device.runtime.model_card().name == "synthetic-cells"  # type: ignore[union-attr]
    device.auth.post(url, data={"confirm_worse": worse})
    label = device.job(job_id)["result"]["model"]["label"]
    assert device.runtime.model_card().label == label  # type: ignore[union-attr]
    assert f"The device now runs {label} (confirmed although worse on {worse})" in flashes(device.client)
    assert label in device.page("/panel/models")  # it joined the project's models, so it can be switched back to


def test_cancel_a_second_train_queues_and_a_killed_worker_reads_interrupted(trained: tuple[Device, str, str], worker: TrainerWorker) -> None:
    device, _, review = trained
    first, said = device.start(review)
    second, said = device.start(review)
    assert "Queued behind 1 job(s) of this project" in said
    assert device.job(second)["state"] == "queued"
    device.auth.post(f"/panel/training/jobs/{second}/cancel")
    assert device.job(second)["state"] == "cancelled" and "Cancelled" in flashes(device.client)
    device.wait(first, ("running",), timeout=30)
    worker.sigkill()
    api = device.client.get(f"/panel/api/training/jobs/{first}")
    assert api.status_code == 503 and "does not answer" in api.get_json()["error"]
    worker.start()
    job = device.job(first)
    assert job["state"] == "interrupted"
    page = device.page(f"/panel/training/jobs/{first}")
    assert "Interrupted: the trainer stopped unexpectedly" in page and "press Train again" in page
