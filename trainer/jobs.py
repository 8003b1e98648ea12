"""The trainer service's durable job queue: one SQLite file, one job running at a time.

Why SQLite and not a queue library: the queue holds a handful of jobs a day, must survive a
SIGKILL of the worker, and must answer "what is my job doing" for several devices at once; one
file in WAL mode with a transaction per change does all three and needs no server. A job belongs
to the device whose token submitted it; every read below takes that device, so a device never
sees, or cancels, another's job.

States: queued -> running -> done | failed | cancelled | interrupted. `interrupted` is what a
job that was running when the worker died becomes at the next start, with the reason.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FINAL_STATES = frozenset({"done", "failed", "cancelled", "interrupted"})
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    project TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    request TEXT NOT NULL,
    plan TEXT NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    message TEXT NOT NULL DEFAULT '',
    cancel INTEGER NOT NULL DEFAULT 0,
    rollout TEXT
);
CREATE INDEX IF NOT EXISTS jobs_device ON jobs (device, created);
"""


@dataclass
class Job:
    id: str
    device: str
    project: str
    state: str
    created: float
    request: dict[str, Any]
    plan: dict[str, Any]
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    message: str = ""
    started: float | None = None
    finished: float | None = None
    cancel: bool = False
    rollout: dict[str, Any] | None = None  # its bundle's fleet rollout, when one was started (trainer/rollouts.py)

    def public(self, position: int | None = None) -> dict[str, Any]:
        """What the device sees (JSON): no paths of the trainer's disk."""
        out = {
            "id": self.id, "project": self.project, "state": self.state, "message": self.message,
            "created": self.created, "started": self.started, "finished": self.finished,
            "cancel_requested": self.cancel, "plan": self.plan, "progress": self.progress, "result": self.result,
            "rollout": self.rollout,
            "request": {k: v for k, v in self.request.items() if k in ("package", "held_out", "baseline", "options", "warm_start")},
        }
        if position is not None:
            out["queue_position"] = position
        return out


def _row(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"], device=row["device"], project=row["project"], state=row["state"], created=row["created"],
        request=json.loads(row["request"]), plan=json.loads(row["plan"]), progress=json.loads(row["progress"]),
        result=json.loads(row["result"]) if row["result"] else None, message=row["message"],
        started=row["started"], finished=row["finished"], cancel=bool(row["cancel"]),
        rollout=json.loads(row["rollout"]) if row["rollout"] else None,
    )


class JobQueue:
    """Every method is one transaction; safe from the HTTP threads and the runner thread at once."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a finished job survives a power cut
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        if "rollout" not in columns:  # a queue from before fleet rollouts: its jobs keep their history
            self._db.execute("ALTER TABLE jobs ADD COLUMN rollout TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _one(self, sql: str, args: tuple[Any, ...]) -> Job | None:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return _row(row) if row else None

    def submit(self, device: str, project: str, request: dict[str, Any], plan: dict[str, Any]) -> Job:
        job = Job(secrets.token_hex(6), device, project, "queued", time.time(), request, plan,
                  progress={"state": "queued"}, message="waiting for the trainer")
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, device, project, state, created, request, plan, progress, message) VALUES (?,?,?,?,?,?,?,?,?)",
                (job.id, device, project, job.state, job.created, json.dumps(request), json.dumps(plan),
                 json.dumps(job.progress), job.message),
            )
        return job

    def get(self, device: str, job_id: str) -> Job | None:
        return self._one("SELECT * FROM jobs WHERE id = ? AND device = ?", (job_id, device))

    def get_any(self, job_id: str) -> Job | None:
        """For the runner only (it works for every device)."""
        return self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))

    def of_device(self, device: str, project: str | None = None, limit: int = 50) -> list[Job]:
        sql, args = "SELECT * FROM jobs WHERE device = ?", [device]
        if project:
            sql += " AND project = ?"
            args.append(project)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created DESC LIMIT ?", (*args, limit)).fetchall()
        return [_row(r) for r in rows]

    def position(self, job: Job) -> int | None:
        """1 = next to run; None when the job is not waiting."""
        if job.state != "queued":
            return None
        with self._lock:
            ahead = self._db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND created < ?", (job.created,)).fetchone()[0]
        return int(ahead) + 1

    def busy(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs WHERE state IN ('queued', 'running') GROUP BY state").fetchall()
        return {"queued": 0, "running": 0, **{r[0]: int(r[1]) for r in rows}}

    def claim_next(self) -> Job | None:
        """The oldest queued job, now running (atomically: one runner, one job)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT * FROM jobs WHERE state = 'queued' ORDER BY created LIMIT 1").fetchone()
                if row is None:
                    return None
                now = time.time()
                self._db.execute("UPDATE jobs SET state = 'running', started = ?, message = 'starting' WHERE id = ?", (now, row["id"]))
            finally:
                self._db.execute("COMMIT")
        job = _row(row)
        job.state, job.started, job.message = "running", now, "starting"
        return job

    def running(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs WHERE state = 'running' ORDER BY created").fetchall()
        return [_row(r) for r in rows]

    def set_progress(self, job_id: str, progress: dict[str, Any], message: str | None = None) -> None:
        with self._lock:
            if message is None:
                self._db.execute("UPDATE jobs SET progress = ? WHERE id = ? AND state = 'running'", (json.dumps(progress), job_id))
            else:
                self._db.execute("UPDATE jobs SET progress = ?, message = ? WHERE id = ? AND state = 'running'",
                                 (json.dumps(progress), message, job_id))

    def finish(self, job_id: str, state: str, message: str, result: dict[str, Any] | None = None) -> None:
        if state not in FINAL_STATES:
            raise ValueError(f"{state} is not a final state")
        with self._lock:
            self._db.execute("UPDATE jobs SET state = ?, message = ?, result = ?, finished = ? WHERE id = ? AND state NOT IN "
                             "('done', 'failed', 'cancelled', 'interrupted')",
                             (state, message, json.dumps(result) if result is not None else None, time.time(), job_id))

    def request_cancel(self, device: str, job_id: str) -> Job | None:
        """A queued job ends at once; a running one is stopped by the runner (it checks the flag)."""
        with self._lock:
            self._db.execute("UPDATE jobs SET cancel = 1 WHERE id = ? AND device = ?", (job_id, device))
            self._db.execute("UPDATE jobs SET state = 'cancelled', message = 'cancelled before it started', finished = ? "
                             "WHERE id = ? AND device = ? AND state = 'queued'", (time.time(), job_id, device))
        return self.get(device, job_id)

    def cancel_requested(self, job_id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT cancel FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row[0])

    def set_rollout(self, job_id: str, rollout: dict[str, Any]) -> None:
        """The fleet rollout of a done job's bundle: its state and outcome, kept across restarts."""
        with self._lock:
            self._db.execute("UPDATE jobs SET rollout = ? WHERE id = ?", (json.dumps(rollout), job_id))

    def with_rollout(self) -> list[Job]:
        """Every job that has had a rollout, newest first (for `recover`, and to find the fleet's last)."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs WHERE rollout IS NOT NULL ORDER BY created DESC").fetchall()
        return [_row(r) for r in rows]
