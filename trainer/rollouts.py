"""Rolling a done training job's model out to the fleet from the trainer service, and back.

The panel's "Roll out" is POST /v1/jobs/<id>/rollout: the job's bundle zip comes from the job's
store, is published where the devices read models (the fleet's S3 store), and goes out canary
first through the same code as `python -m trainer rollout` (trainer/fleet/cli.py, rollout.py).
It runs on a background thread (a stage waits for devices, minutes on a real fleet); its state is
written on the job (`jobs.rollout`) at every step, so the device sees it move and the outcome
survives a restart of the worker. One rollout or rollback runs at a time: a second is refused.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainer.fleet.cli import (
    STORE_ENV,
    FleetAccess,
    annotate_rollback,
    annotate_rollout,
    connect_fleet,
    publish_ref,
)
from trainer.fleet.history import HistoryStore, State
from trainer.fleet.rollout import RolloutPlan, RolloutResult, StageResult, rollback, rollout
from trainer.fleet.store import ACCESS_KEY_ENV, SECRET_KEY_ENV, FleetStore
from trainer.intake import Refused
from trainer.jobs import Job, JobQueue
from trainer.objectstore import ObjectStore
from trainer.runner import unzip_bundle

log = logging.getLogger(__name__)
FLEET_ENV = "SCOPEHIVE_TRAINER_FLEET"
WAIT_ENV = "SCOPEHIVE_TRAINER_FLEET_WAIT_S"
POLL_ENV = "SCOPEHIVE_TRAINER_FLEET_POLL_S"
SETUP = (f"start the trainer worker with {FLEET_ENV}=<org>/<fleet>, BALENA_API_KEY=<a balena API key> (BALENA_API_URL for "
         f"openBalena) and {STORE_ENV}=s3://bucket?endpoint=host:port (the store the devices read models from, keys in "
         f"{ACCESS_KEY_ENV} / {SECRET_KEY_ENV})")
ACTIVE = frozenset({"publishing", "canary", "rolling", "rolling_back"})


class FleetConfigError(ValueError):
    """The worker's fleet settings are unusable; the message says which variable to set."""


@dataclass(frozen=True)
class FleetSettings:
    """The fleet this trainer rolls models out to, from the worker's environment."""

    access: FleetAccess
    wait_s: float = 600.0
    poll_s: float = 5.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, worker_store: str = "") -> FleetSettings | None:
        """None without SCOPEHIVE_TRAINER_FLEET; a half-configured fleet fails the worker's start, saying what is missing."""
        env = dict(os.environ if environ is None else environ)
        fleet = env.get(FLEET_ENV, "").strip()
        if not fleet:
            return None
        if fleet.count("/") != 1 or not all(fleet.split("/")):
            raise FleetConfigError(f"{FLEET_ENV}='{fleet}': give the fleet's slug, <org>/<fleet> (e.g. mylab/scopehive)")
        if not env.get("BALENA_API_KEY", "").strip():
            raise FleetConfigError(f"{FLEET_ENV} is set but BALENA_API_KEY is not: create an API key in the balena dashboard "
                                   "(Preferences > Access tokens) and set it for the worker")
        store = env.get(STORE_ENV, "").strip()
        store = store if store.startswith("s3://") else worker_store if worker_store.startswith("s3://") else ""
        if not store:
            raise FleetConfigError(f"{FLEET_ENV} needs the S3 store the devices read models from: set {STORE_ENV}="
                                   "s3://bucket?endpoint=host:port[&secure=0] (a file:// store is not reachable from the fleet)")
        if not env.get(ACCESS_KEY_ENV) or not env.get(SECRET_KEY_ENV):
            raise FleetConfigError(f"{FLEET_ENV}: set {ACCESS_KEY_ENV} and {SECRET_KEY_ENV} for the store {store.split('?')[0]}")
        try:
            wait_s, poll_s = float(env.get(WAIT_ENV) or 600), float(env.get(POLL_ENV) or 5)
        except ValueError:
            raise FleetConfigError(f"{WAIT_ENV} and {POLL_ENV} are seconds, e.g. 600 and 5") from None
        if wait_s < 0 or poll_s <= 0:
            raise FleetConfigError(f"{WAIT_ENV} must be >= 0 and {POLL_ENV} > 0")
        access = FleetAccess(fleet, store, env.get("BALENA_HOST") or "balena-cloud.com", env.get("BALENA_API_URL", ""))
        return cls(access, wait_s, poll_s)

    def public(self) -> dict[str, Any]:
        return {"name": self.access.fleet, "store": self.access.store.split("?")[0], "wait_s": self.wait_s}


class _Reporting(HistoryStore):
    """The fleet's history, also telling the job each stage the rollout enters."""

    def __init__(self, inner: HistoryStore, report: Any) -> None:
        super().__init__(inner.store, inner.fleet)
        self.report = report

    def update(self, record_id: int, state: State, note: str = "") -> None:
        super().update(record_id, state, note)
        self.report(record_id, state)


def _stages(result: RolloutResult) -> list[dict[str, Any]]:
    return [{"name": name, **asdict(stage)} for name, stage in result.stages]


def _problems(stage: StageResult) -> str:
    said = [f"{uuid[:7]} rejected it ({why})" for uuid, why in stage.failed.items()]
    said += [f"{uuid[:7]} did not answer in time" for uuid in stage.pending]
    return "; ".join(said)


def outcome(result: RolloutResult, fleet: str) -> tuple[str, str]:
    """(state, message) of a finished rollout, the message saying what to do when it failed."""
    devices = sum(len(stage.devices) for _, stage in result.stages)
    switched = sum(len(stage.switched) for _, stage in result.stages)
    offline = sum(len(stage.offline) for _, stage in result.stages)
    if result.ok:
        later = f"; {offline} offline device(s) switch when they come back" if offline else ""
        return "done", f"{result.model_ref} runs on {switched} of {devices} device(s) of fleet {fleet}, canary first{later}"
    name, stage = next((n, s) for n, s in result.stages if not s.ok)
    if name == "canary":
        return "failed", (f"the canary stage failed: {_problems(stage)}. The rest of the fleet was not touched. Roll back to "
                          "return the canary to its previous model, and read the canary's log for why")
    return "failed", (f"the canary switched, then the rest of the fleet failed: {_problems(stage)}. Roll back to return "
                      "every device this rollout touched to its previous model")


class FleetRollouts:
    """Starts rollouts and rollbacks of jobs' models; every step lands on the job in the queue."""

    def __init__(self, settings: FleetSettings, queue: JobQueue, store: ObjectStore, work_dir: Path) -> None:
        self.settings = settings
        self.queue = queue
        self.store = store
        self.work_dir = work_dir / "rollouts"
        self._lock = threading.Lock()
        self._busy: str | None = None  # the job whose rollout or rollback runs now

    @property
    def fleet(self) -> str:
        return self.settings.access.fleet

    def recover(self) -> None:
        """A rollout the last worker died in ends `failed`, saying the fleet may be part-way."""
        for job in self.queue.with_rollout():
            record = dict(job.rollout or {})
            if record.get("state") in ACTIVE:
                stage = record["state"]
                record.update(state="failed", finished=time.time(),
                              message=f"the trainer service stopped during the {stage.replace('_', ' ')} stage: some devices may "
                              "have switched. Roll back to return them to their previous models, or roll out again")
                self.queue.set_rollout(job.id, record)

    def _claim(self, job_id: str) -> None:
        with self._lock:
            if self._busy is not None:
                busy = self.queue.get_any(self._busy)
                state = (busy.rollout or {}).get("state", "running") if busy else "running"
                raise Refused(409, f"a rollout to fleet {self.fleet} is already running (job {self._busy}, {state}): "
                              "wait until it ends, then try again")
            self._busy = job_id

    def _release(self) -> None:
        with self._lock:
            self._busy = None

    def _save(self, job_id: str, doc: dict[str, Any], **changes: Any) -> None:
        doc.update(changes)
        self.queue.set_rollout(job_id, doc)

    # ---- rollout ---------------------------------------------------------------------------
    def start(self, device: str, job_id: str, body: Any) -> dict[str, Any]:
        """Check, record `publishing` and go on in the background; returns the job as the device sees it."""
        job = self.queue.get(device, job_id)
        if job is None:
            raise Refused(404, f"no job {job_id} of this device on the trainer")
        canary, confirm = _rollout_options(body)
        result = job.result or {}
        if job.state != "done" or not result.get("bundle"):
            raise Refused(409, f"job {job_id} is {job.state}: only a done job's model can be rolled out")
        worse = list((result.get("comparison") or {}).get("worse_classes") or [])
        if worse and confirm != ", ".join(worse):
            raise Refused(422, f"not rolled out: on the held-out frames this model is worse than the running one on "
                          f"{', '.join(worse)}; to roll it out anyway send confirm_worse \"{', '.join(worse)}\"")
        self._claim(job.id)
        record: dict[str, Any] = {
            "fleet": self.fleet, "state": "publishing", "model": result["model"]["label"], "canary": canary,
            "confirmed_worse": worse, "record": None, "stages": [], "started": time.time(), "finished": None,
            "message": f"publishing {result['model']['label']} to the fleet's store",
        }
        try:
            self.queue.set_rollout(job.id, record)
            threading.Thread(target=self._roll_out, args=(job, record), name=f"rollout-{job.id}", daemon=True).start()
        except Exception:
            self._release()
            raise
        return self._public(job)

    def _public(self, job: Job) -> dict[str, Any]:
        found = self.queue.get_any(job.id)
        return (found or job).public()

    def _roll_out(self, job: Job, record: dict[str, Any]) -> None:
        folder = self.work_dir / job.id
        try:
            fleet, history = connect_fleet(self.settings.access)
            model_ref = _publish(self.store, (job.result or {})["bundle"], folder, self.settings.access.store)

            def entered(record_id: int, state: str) -> None:
                if state in ("canary", "rolling"):
                    what = "canary: the first device(s) switch while the rest wait" if state == "canary" else \
                        "rolling: the canary switched; the rest of the fleet follows"
                    self._save(job.id, record, state=state, record=record_id, message=what)

            plan = RolloutPlan(model_ref=model_ref, canary=record["canary"], wait_s=self.settings.wait_s, poll_s=self.settings.poll_s)
            result = rollout(fleet, _Reporting(history, entered), plan)
            annotate_rollout(self.fleet, result)
            state, message = outcome(result, self.fleet)
            self._save(job.id, record, state=state, message=message, record=result.record_id, stages=_stages(result),
                       finished=time.time())
            log.info("job %s: rollout of %s to %s %s", job.id, model_ref, self.fleet, state)
        except Exception as exc:  # the device shows this; the trace goes to the worker's log
            log.exception("job %s: rollout failed", job.id)
            touched = record.get("record") is not None
            self._save(job.id, record, state="failed", finished=time.time(),
                       message=f"{exc}" + (" (some devices may have switched: roll back)" if touched else
                                           "; no device was touched: fix that and roll out again"))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            self._release()

    # ---- rollback --------------------------------------------------------------------------
    def rollback(self, device: str, job_id: str) -> dict[str, Any]:
        """Undo this job's rollout, when it is the fleet's newest one not yet undone."""
        job = self.queue.get(device, job_id)
        if job is None:
            raise Refused(404, f"no job {job_id} of this device on the trainer")
        record = dict(job.rollout or {})
        if not record or record.get("state") == "rolled_back":
            raise Refused(409, f"job {job_id} has no rollout to roll back" + (" (it was rolled back already)" if record else ""))
        if record.get("record") is None and record.get("state") not in ACTIVE:
            raise Refused(409, f"the rollout of job {job_id} never reached a device: nothing to roll back")
        self._claim(job.id)
        try:
            history = HistoryStore(FleetStore.from_url(self.settings.access.store), self.fleet)
            last = history.last_undoable()
            if last is None or last.id != record.get("record"):
                newer = f"rollout #{last.id} of {last.model_ref}" if last else "none"
                raise Refused(409, f"the fleet's newest rollout is {newer}, not this job's (#{record.get('record')}): "
                              f"roll that back first (from its job, or python -m trainer rollback --fleet {self.fleet})")
            self._save(job.id, record, state="rolling_back", message="rolling back: devices return to their previous models",
                       finished=None)
            threading.Thread(target=self._roll_back, args=(job, record), name=f"rollback-{job.id}", daemon=True).start()
        except Exception:
            self._release()
            raise
        return self._public(job)

    def _roll_back(self, job: Job, record: dict[str, Any]) -> None:
        try:
            fleet, history = connect_fleet(self.settings.access)
            plan = RolloutPlan(model_ref="rollback:previous", wait_s=self.settings.wait_s, poll_s=self.settings.poll_s)
            result = rollback(fleet, history, plan)
            annotate_rollback(self.fleet, result)
            restored = ", ".join(sorted({name or "their own configured model" for name, _ in result.stages})) or "nothing"
            problems = "; ".join(p for _, stage in result.stages if (p := _problems(stage)))
            message = f"rolled back: the devices run {restored} again" + (f", except: {problems}" if problems else "")
            self._save(job.id, record, state="rolled_back", message=message, finished=time.time(),
                       rollback_stages=_stages(result))
        except Exception as exc:
            log.exception("job %s: rollback failed", job.id)
            self._save(job.id, record, state="failed", finished=time.time(),
                       message=f"the rollback failed ({exc}): press Roll back again, or run python -m trainer rollback --fleet {self.fleet}")
        finally:
            self._release()


def _rollout_options(body: Any) -> tuple[int, str]:
    body = {} if body is None else body
    if not isinstance(body, dict) or set(body) - {"canary", "confirm_worse"}:
        raise Refused(400, "the rollout body is a JSON object with optional 'canary' (devices first, default 1) and 'confirm_worse'")
    canary = body.get("canary", 1)
    if isinstance(canary, bool) or not isinstance(canary, int) or not 1 <= canary <= 100:
        raise Refused(400, "'canary' is the number of devices switched and checked first: 1 to 100")
    confirm = body.get("confirm_worse", "")
    if not isinstance(confirm, str):
        raise Refused(400, "'confirm_worse' names the classes the model is worse on, comma-separated")
    return canary, confirm.strip()


def _publish(store: ObjectStore, key: str, folder: Path, fleet_store: str) -> str:
    """The job's bundle zip from the job's store, unpacked and published where the devices read models."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    store.download(key, folder / "bundle.zip")
    bundle = unzip_bundle(folder / "bundle.zip", folder / "bundle")
    model_ref, where = publish_ref(str(bundle), fleet_store)
    log.info("published %s to %s", model_ref, where)
    return model_ref
