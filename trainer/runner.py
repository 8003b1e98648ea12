"""Runs the trainer service's jobs, one at a time: train -> score on the held-out frames -> publish.

Each training is `python -m trainer train` in its own process (it dies with the worker: a
SIGKILLed worker leaves no orphan training on the GPU); the runner follows its progress.json and
copies it into the queue. A bundle is offered (state `done`, key in the result) only after the
bundle zip is whole in the store. At start, a job the queue still calls `running` was cut off by
the worker's death: if its bundle was already complete it is finished (scored and published),
otherwise it ends `interrupted` with the reason.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import threading
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from trainer.bundle import BundleError, read_card
from trainer.compare import compare, describe
from trainer.config import TrainConfig
from trainer.dataset import DatasetError, load_dataset_package
from trainer.intake import job_prefix
from trainer.jobs import Job, JobQueue
from trainer.marks import TrainingMarks
from trainer.objectstore import ObjectStore, StoreError
from trainer.report_figure import render_worst_png, worst_summary
from trainer.warmstart import WarmStartError
from trainer.warmstart import check as check_warm_start

log = logging.getLogger(__name__)
_BUNDLE_SKIP = {"train", "tensorboard", "progress.json"}
WARM_NOTE = "warm_start.txt"
WORST_PNG = "held_out_worst.png"
_CANCEL_GRACE_S = 10.0


def _die_with_parent() -> None:
    """In the child: the kernel kills it when the worker dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _train_command(job_dir: Path, options: dict[str, Any], init_from: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "trainer", "train", str(job_dir / "package.zip"), "--out", str(job_dir / "bundle"),
           "--quiet", "--force"]
    for key, value in sorted(options.items()):
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    if init_from is not None:
        cmd += ["--init-from", str(init_from)]
    return cmd


def warm_start_source(job: Job, folder: Path) -> tuple[Path | None, str]:
    """The running model's bundle folder to start from, or None, and the sentence the result shows."""
    if not job.request.get("warm_start", True):
        return None, "Cold start: warm start was turned off for this training."
    baseline = folder / "baseline.zip"
    if not baseline.is_file():
        return None, "Cold start: the device runs no model of this project to start from."
    source = folder / "baseline"
    width = float((job.request.get("options") or {}).get("width_multiplier", TrainConfig.model_fields["width_multiplier"].default))
    try:
        if not source.is_dir():
            unzip_bundle(baseline, source)
        card = read_card(source)
        check_warm_start(source, list(job.plan.get("classes") or []), width)
    except (WarmStartError, BundleError, zipfile.BadZipFile) as exc:
        return None, f"Cold start: {exc}."
    return source, f"Warm start: training started from the weights of the running model {card.name}:{card.version}."


def failure_message(log_path: Path, returncode: int) -> str:
    """Why a training process ended badly, in words a lab can act on."""
    lines = [ln.strip() for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()] if log_path.is_file() else []
    text = "\n".join(lines[-40:])
    if "No space left on device" in text:
        return "the trainer's disk is full: free space on the trainer (its work folder) and press Train again"
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.Signals._value2member_map_ else str(-returncode)
        return f"the training process was killed ({name}; out of memory?): nothing was published; try again, or train fewer images"
    errors = [ln for ln in lines if ln.startswith("error:")]
    detail = errors[-1][len("error:"):].strip() if errors else (lines[-1] if lines else f"exit status {returncode}")
    return f"training failed: {detail}"


def _progress(raw: dict[str, Any]) -> dict[str, Any]:
    keep = ("state", "epoch", "epochs", "loss", "val", "val_epoch", "best", "final", "eta_s", "elapsed_s", "notes", "history")  # not `message`: it names folders
    return {k: raw[k] for k in keep if k in raw}


def zip_bundle(bundle: Path, dest: Path) -> None:
    """The files a device needs (not train/, tensorboard/, progress.json), model.json last."""
    files = sorted((p for p in bundle.rglob("*") if p.is_file() and p.relative_to(bundle).parts[0] not in _BUNDLE_SKIP),
                   key=lambda p: (p.name == "model.json", str(p)))
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(bundle).as_posix())


def unzip_bundle(src: Path, dest: Path, max_bytes: int = 2 << 30) -> Path:
    """A bundle zip from the store, unpacked safely (no paths out of `dest`, bounded size)."""
    with zipfile.ZipFile(src) as archive:
        infos = archive.infolist()
        if sum(i.file_size for i in infos) > max_bytes:
            raise BundleError(f"{src.name}: unpacks to more than {max_bytes >> 20} MiB")
        for info in infos:
            target = (dest / info.filename).resolve()
            if dest.resolve() not in target.parents:
                raise BundleError(f"{src.name}: entry '{info.filename}' would land outside the bundle")
        archive.extractall(dest)
    return dest


class JobRunner:
    """Takes queued jobs one at a time; `stop` ends the current one as interrupted (SIGTERM of the service)."""

    def __init__(self, queue: JobQueue, store: ObjectStore, work_dir: Path, poll_s: float = 0.5,
                 marks: TrainingMarks | None = None) -> None:
        self.queue = queue
        self.marks = marks or TrainingMarks(None)
        self.store = store
        self.work_dir = work_dir
        self.poll_s = poll_s
        self._complete: list[Job] = []  # found complete by `recover`: published by `run`

    def job_dir(self, job_id: str) -> Path:
        return self.work_dir / "jobs" / job_id

    def run(self, stop: threading.Event) -> None:
        """Finish what `recover` found complete, then take queued jobs until `stop`."""
        for complete in self._complete:
            self._finish_or_fail(complete, resumed=True)
            self._mark_end(complete.id)
        self._complete = []
        while not stop.is_set():
            job = self.queue.claim_next()
            if job is None:
                stop.wait(self.poll_s)
                continue
            self.marks.started(job)
            self.run_job(job, stop)
            self._mark_end(job.id)

    def _mark_end(self, job_id: str) -> None:
        final = self.queue.get_any(job_id)
        if final is not None:
            self.marks.ended(final)

    # ---- one job ---------------------------------------------------------------------------
    def run_job(self, job: Job, stop: threading.Event) -> None:
        log.info("job %s (%s/%s): training", job.id, job.device, job.project)
        try:
            outcome = self._train(job, stop)
        except Exception as exc:  # one bad job must never stop the service
            log.exception("job %s failed", job.id)
            self.queue.finish(job.id, "failed", _plain_failure(exc))
            return
        if outcome == "trained":
            self._finish_or_fail(job)

    def _finish_or_fail(self, job: Job, resumed: bool = False) -> None:
        try:
            self.finish(job, resumed)
        except Exception as exc:
            log.exception("job %s failed after training", job.id)
            self.queue.finish(job.id, "failed", _plain_failure(exc))

    def _train(self, job: Job, stop: threading.Event) -> str:
        folder = self.job_dir(job.id)
        progress_path = folder / "bundle" / "progress.json"
        init_from, note = warm_start_source(job, folder)
        (folder / WARM_NOTE).write_text(note)
        with open(folder / "train.log", "ab") as log_file:
            child = subprocess.Popen(_train_command(folder, job.request.get("options") or {}, init_from), stdout=log_file,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=folder,
                                     preexec_fn=_die_with_parent, start_new_session=True)
        self.queue.set_progress(job.id, {"state": "starting"}, "starting the training process")
        while True:
            try:
                returncode = child.wait(timeout=self.poll_s)
                break
            except subprocess.TimeoutExpired:
                pass
            self._copy_progress(job.id, progress_path)
            if self.queue.cancel_requested(job.id):
                _stop_child(child)
                self.queue.finish(job.id, "cancelled", "cancelled while training: nothing was published")
                return "cancelled"
            if stop.is_set():
                _stop_child(child)
                epoch = _read_json(progress_path).get("epoch", 0)
                self.queue.finish(job.id, "interrupted", f"the trainer service was stopped while this job trained (epoch {epoch}): "
                                  "nothing was published and the running model is unchanged; press Train again")
                return "interrupted"
        self._copy_progress(job.id, progress_path)
        if returncode != 0:
            self.queue.finish(job.id, "failed", failure_message(folder / "train.log", returncode))
            return "failed"
        return "trained"

    def _copy_progress(self, job_id: str, path: Path) -> None:
        raw = _read_json(path)
        if raw:
            state = raw.get("state", "")
            if state == "training":
                message = f"training: epoch {raw.get('epoch', 0)} of {raw.get('epochs', '?')}"
            elif state == "done":  # train's own message names the trainer's folder: not the device's business
                message = "trained; scoring and publishing"
            else:
                message = raw.get("message") or state
            self.queue.set_progress(job_id, {**_progress(raw), "message": message}, message)

    def finish(self, job: Job, resumed: bool = False) -> None:
        """Score on the held-out frames beside the running model, publish, then call it done."""
        folder = self.job_dir(job.id)
        bundle = folder / "bundle"
        self.queue.set_progress(job.id, {**job.progress, **_progress(_read_json(bundle / "progress.json")), "state": "scoring",
                                         "message": "scoring on the held-out frames"}, "scoring on the held-out frames")
        card = read_card(bundle)
        result: dict[str, Any] = {
            "model": {"name": card.name, "version": card.version, "label": f"{card.name}:{card.version}", "classes": card.classes},
            "validation": {k: card.metrics.get(k) for k in ("map50", "map50_95", "per_class", "count_error", "val_images", "val_objects")},
            "training": {k: (card.metrics.get("training") or {}).get(k) for k in ("epochs_run", "epochs", "best_epoch", "seconds", "notes")},
            "warm_start": (folder / WARM_NOTE).read_text() if (folder / WARM_NOTE).is_file() else None,
        }
        result.update(self._held_out(folder, card.classes))
        prefix = job_prefix(job.device, job.id)
        zipped = folder / "bundle.zip"
        zip_bundle(bundle, zipped)
        for name in ("report.png", "report.md"):
            if (bundle / name).is_file():
                self.store.upload(f"{prefix}/{name}", bundle / name)
        if (folder / WORST_PNG).is_file():
            self.store.upload(f"{prefix}/{WORST_PNG}", folder / WORST_PNG)
            result["held_out_worst_png"] = f"{prefix}/{WORST_PNG}"
        self.store.upload(f"{prefix}/bundle.zip", zipped, "application/zip")  # last: the job is done once it is there
        result["bundle"] = f"{prefix}/bundle.zip"
        result["report_png"] = f"{prefix}/report.png" if (bundle / "report.png").is_file() else None
        verdict = f"; {describe(result['comparison'])}" if result.get("comparison") else ""
        note = " (finished after a restart of the trainer)" if resumed else ""
        self.queue.finish(job.id, "done", f"model {card.name}:{card.version} is ready{verdict}{note}", result)
        (folder / "package.zip").unlink(missing_ok=True)
        log.info("job %s done: %s", job.id, result["bundle"])

    def _held_out(self, folder: Path, classes: list[str]) -> dict[str, Any]:
        from trainer.scoring import score_bundle, score_bundle_kept

        held = folder / "held_out.zip"
        if not held.is_file():
            return {"held_out": None, "comparison": None, "comparison_note": "no held-out frames were given"}
        try:
            samples = load_dataset_package(held).samples
        except DatasetError as exc:
            return {"held_out": None, "comparison": None, "comparison_note": f"the held-out package could not be read: {exc}"}
        scored = score_bundle_kept(folder / "bundle", samples)
        new = scored.figures
        worst = worst_summary(samples, scored.kept, classes)
        figure = render_worst_png(samples, scored.kept, classes, worst)
        if figure is not None:
            (folder / WORST_PNG).write_bytes(figure)
        out: dict[str, Any] = {"held_out": {"images": len(samples), "objects": new["val_objects"], "new": new, "running": None,
                                            "worst": [{k: v for k, v in w.items() if k != "index"} for w in worst]}}
        baseline = folder / "baseline.zip"
        if not baseline.is_file():
            return {**out, "comparison": None, "comparison_note": "the device runs no model of this project to compare with"}
        try:
            old_dir = unzip_bundle(baseline, folder / "baseline")
            old_card = read_card(old_dir)
        except (BundleError, zipfile.BadZipFile) as exc:
            return {**out, "comparison": None, "comparison_note": f"the running model's bundle could not be read: {exc}"}
        if old_card.classes != classes:
            return {**out, "comparison": None, "comparison_note": f"the running model ({old_card.name}:{old_card.version}) knows "
                    f"classes {old_card.classes}, this project {classes}: no side-by-side comparison"}
        old = score_bundle(old_dir, samples, counts=True)
        out["held_out"]["running"] = old
        out["held_out"]["running_label"] = f"{old_card.name}:{old_card.version}"
        return {**out, "comparison": compare(new, old, classes), "comparison_note": None}

    # ---- after a restart -------------------------------------------------------------------
    def recover(self) -> None:
        """Jobs the last worker left `running` (call before serving, so no device reads a stale state):
        the rest end as interrupted at once; complete ones stay running until `run` publishes them."""
        for job in self.queue.running():
            folder = self.job_dir(job.id)
            progress = _read_json(folder / "bundle" / "progress.json")
            if progress.get("state") == "done" and (folder / "bundle" / "model.json").is_file():
                log.info("job %s: its bundle was complete when the worker stopped; publishing it now", job.id)
                self.queue.set_progress(job.id, {**job.progress, "state": "scoring"}, "finishing after a restart of the trainer")
                self._complete.append(job)
                continue
            where = f"training epoch {progress.get('epoch', 0)} of {progress.get('epochs', '?')}" if progress.get("epoch") else (
                progress.get("state") or "starting")
            now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            self.queue.finish(job.id, "interrupted", f"the trainer stopped unexpectedly while this job was {where} (the worker "
                              f"was restarted at {now}): training does not resume mid-run, nothing was published and the running "
                              "model is unchanged; press Train again to start over")
            log.warning("job %s interrupted by the last worker's end (%s)", job.id, where)
            self._mark_end(job.id)
            shutil.rmtree(folder / "bundle", ignore_errors=True)


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    child.terminate()
    try:
        child.wait(_CANCEL_GRACE_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _plain_failure(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.errno == 28:
        return "the trainer's disk is full: free space on the trainer (its work folder) and press Train again"
    if isinstance(exc, StoreError):
        return f"the bundle could not be stored ({exc}); the job's files stay on the trainer: fix the store and press Train again"
    return f"{type(exc).__name__}: {exc}"

