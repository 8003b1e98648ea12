"""Experiments, calibration profiles and each experiment's frame/object record, in one SQLite file.

The store is the truth: the panel, the HTTP API and the CLI (another process) all change it, and
the running device follows it. An experiment that was running when the device stopped is still
running when it comes back (same id, same record), so a restart never splits or duplicates one.
At most one experiment runs per device: a partial unique index makes a second start fail even
when two processes race.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from device.experiments.calibration import CalibrationProfile, ExperimentError, clean_text
from device.field_errors import readable
from device.metrics.disk import open_wal, write_transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS experiments (
    id TEXT PRIMARY KEY, body TEXT NOT NULL, started REAL NOT NULL, stopped REAL,
    running INTEGER, start_marked INTEGER NOT NULL DEFAULT 0, stop_marked INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS one_running ON experiments(running);
CREATE TABLE IF NOT EXISTS frames (
    experiment TEXT NOT NULL, ts_us INTEGER NOT NULL, frame_index INTEGER, analysed TEXT NOT NULL,
    focus REAL, saturated REAL, dark REAL, count INTEGER, counts TEXT, model TEXT, model_version TEXT,
    um_per_pixel REAL, fov_mm2 REAL, image TEXT, calibration TEXT, estimates TEXT, PRIMARY KEY (experiment, ts_us)
);
CREATE TABLE IF NOT EXISTS objects (
    experiment TEXT NOT NULL, ts_us INTEGER NOT NULL, class TEXT NOT NULL, x1 REAL, y1 REAL, x2 REAL, y2 REAL,
    width_um REAL, height_um REAL, area_um2 REAL, score REAL
);
CREATE INDEX IF NOT EXISTS objects_by_experiment ON objects(experiment, ts_us);
"""
FRAME_COLUMNS = ("ts_us", "frame_index", "analysed", "focus", "saturated", "dark", "count", "counts", "model",
                 "model_version", "um_per_pixel", "fov_mm2", "image", "calibration", "estimates")
# image: JSON of what the file said about the frame (file, plane_t/z/c, channel, stage_x_um...);
# calibration: where um_per_pixel came from; estimates: JSON class -> count_estimate (bundles with
# count_models). All added to stores made before them (_ADDED_FRAME_COLUMNS).
_ADDED_FRAME_COLUMNS = ("image", "calibration", "estimates")
OBJECT_COLUMNS = ("ts_us", "class", "x1", "y1", "x2", "y2", "width_um", "height_um", "area_um2", "score")
_INSERT_FRAME = (f"INSERT OR REPLACE INTO frames (experiment, {', '.join(FRAME_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * (len(FRAME_COLUMNS) + 1))})")
_INSERT_OBJECT = (f"INSERT INTO objects (experiment, {', '.join(OBJECT_COLUMNS)}) "
                  f"VALUES ({', '.join('?' * (len(OBJECT_COLUMNS) + 1))})")


class ExperimentRequest(BaseModel):
    """What a scientist types to start an experiment."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="What is measured, e.g. 'blood smear 3'")
    sample: str = Field("", max_length=100, description="Sample, slide or well id")
    operator: str = Field("", max_length=100, description="Who runs it")
    objective: str = Field("", max_length=60, description="Objective in use, e.g. '40x'")
    profile: str = Field("", max_length=60, description="Calibration profile name (empty: none, sizes in px)")
    notes: str = Field("", max_length=2000, description="Free notes")

    @field_validator("name", "sample", "operator", "objective", "profile")
    @classmethod
    def _one_line(cls, value: str, info: Any) -> str:
        text = clean_text(value, f"experiment {info.field_name}", 100)
        if info.field_name == "name" and not text:
            raise ValueError("experiment name is empty")
        return text

    @field_validator("notes")
    @classmethod
    def _notes(cls, value: str) -> str:
        return clean_text(value, "experiment notes", 2000, multiline=True)


class Experiment(BaseModel):
    """One experiment as stored: what was asked, the calibration copied at start, and its times."""

    model_config = ConfigDict(extra="forbid")

    id: str
    request: ExperimentRequest
    calibration: CalibrationProfile | None = None
    device: str = ""
    project: str = ""
    started: float
    stopped: float | None = None
    provenance: dict[str, Any] = Field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.stopped is None

    @property
    def um_per_pixel(self) -> float | None:
        return self.calibration.um_per_pixel if self.calibration else None

    def public(self) -> dict[str, Any]:
        """JSON for the API and the panel, with ISO times and the elapsed seconds."""
        end = self.stopped if self.stopped is not None else time.time()
        out = self.model_dump(mode="json")
        out.update(running=self.running, elapsed_s=round(end - self.started, 1),
                   started_iso=_iso(self.started), stopped_iso=_iso(self.stopped) if self.stopped else None)
        return out


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:32] or "experiment"


def invalid(exc: ValidationError) -> ExperimentError:
    """A pydantic error as one readable sentence naming the fields by their labels ("Name must not be empty")."""
    return ExperimentError(readable(exc))


class ExperimentStore:
    """SQLite (WAL) at `path`; one connection per thread, safe across processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._db().executescript(_SCHEMA)
        self._add_columns()

    def _add_columns(self) -> None:
        """Columns newer than the store's file (an upgrade keeps its experiments)."""
        db = self._db()
        have = {row[1] for row in db.execute("PRAGMA table_info(frames)")}
        for column in _ADDED_FRAME_COLUMNS:
            if column not in have:
                try:
                    db.execute(f"ALTER TABLE frames ADD COLUMN {column} TEXT")
                except sqlite3.OperationalError as exc:  # another process added it just now
                    if "duplicate column" not in str(exc):
                        raise

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = open_wal(self.path)  # the same pragmas as the track log in this file
        return db

    # ---- profiles ------------------------------------------------------------------------------
    def save_profile(self, profile: CalibrationProfile) -> CalibrationProfile:
        self._db().execute("INSERT OR REPLACE INTO profiles (name, body) VALUES (?, ?)", (profile.name, profile.model_dump_json()))
        return profile

    def profiles(self) -> list[CalibrationProfile]:
        rows = self._db().execute("SELECT body FROM profiles ORDER BY name").fetchall()
        return [CalibrationProfile.model_validate_json(r[0]) for r in rows]

    def profile(self, name: str) -> CalibrationProfile:
        row = self._db().execute("SELECT body FROM profiles WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = ", ".join(p.name for p in self.profiles()) or "none yet: calibrate first"
            raise ExperimentError(f"unknown calibration profile '{name}' (known: {known})")
        return CalibrationProfile.model_validate_json(row[0])

    # ---- experiments ---------------------------------------------------------------------------
    def start(self, request: ExperimentRequest, device: str, project: str, provenance: dict[str, Any]) -> Experiment:
        """Begin an experiment; ExperimentError when one already runs or the profile is unknown."""
        calibration = self.profile(request.profile) if request.profile else None
        running = self.active()
        if running is not None:
            raise ExperimentError(f"experiment '{running.request.name}' ({running.id}) is running: stop it first")
        now = time.time()
        stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%d-%H%M%S")
        experiment = Experiment(id=f"{stamp}-{_slug(request.name)}", request=request, calibration=calibration,
                                device=device, project=project, started=now, provenance=provenance)
        try:
            self._db().execute("INSERT INTO experiments (id, body, started, running) VALUES (?, ?, ?, 1)",
                               (experiment.id, experiment.model_dump_json(), now))
        except sqlite3.IntegrityError as exc:
            raise ExperimentError("another experiment was started at the same moment: stop it first") from exc
        return experiment

    def stop(self) -> Experiment:
        """End the running experiment; ExperimentError when none runs."""
        running = self.active()
        if running is None:
            raise ExperimentError("no experiment is running: nothing to stop")
        stopped = running.model_copy(update={"stopped": max(time.time(), running.started)})
        self._db().execute("UPDATE experiments SET body = ?, stopped = ?, running = NULL WHERE id = ? AND running = 1",
                           (stopped.model_dump_json(), stopped.stopped, running.id))
        return stopped

    def active(self) -> Experiment | None:
        row = self._db().execute("SELECT body FROM experiments WHERE running = 1").fetchone()
        return Experiment.model_validate_json(row[0]) if row else None

    def get(self, experiment_id: str) -> Experiment:
        row = self._db().execute("SELECT body FROM experiments WHERE id = ?", (experiment_id,)).fetchone()
        if row is None:
            raise KeyError(experiment_id)
        return Experiment.model_validate_json(row[0])

    def recent(self, limit: int = 100) -> list[Experiment]:
        rows = self._db().execute("SELECT body FROM experiments ORDER BY started DESC LIMIT ?", (limit,)).fetchall()
        return [Experiment.model_validate_json(r[0]) for r in rows]

    def unmarked(self) -> list[tuple[Experiment, str]]:
        """(experiment, 'started' | 'stopped') whose device_event/annotation is not written yet."""
        rows = self._db().execute(
            "SELECT body, start_marked, stop_marked, stopped FROM experiments "
            "WHERE start_marked = 0 OR (stopped IS NOT NULL AND stop_marked = 0) ORDER BY started").fetchall()
        out: list[tuple[Experiment, str]] = []
        for body, start_marked, stop_marked, stopped in rows:
            experiment = Experiment.model_validate_json(body)
            if not start_marked:
                out.append((experiment, "started"))
            if stopped is not None and not stop_marked:
                out.append((experiment, "stopped"))
        return out

    def set_marked(self, experiment_id: str, which: str) -> None:
        column = {"started": "start_marked", "stopped": "stop_marked"}[which]
        self._db().execute(f"UPDATE experiments SET {column} = 1 WHERE id = ?", (experiment_id,))

    # ---- the record ----------------------------------------------------------------------------
    def add_record(self, frames: Sequence[tuple[Any, ...]], objects: Sequence[tuple[Any, ...]]) -> None:
        """Frames and objects rows (experiment first, then FRAME_COLUMNS / OBJECT_COLUMNS), one transaction.
        A frame replayed after a crash replaces itself (same experiment and time)."""
        with write_transaction(self._db()) as db:
            db.executemany(_INSERT_FRAME, frames)
            db.executemany(_INSERT_OBJECT, objects)

    def frames(self, experiment_id: str) -> list[dict[str, Any]]:
        rows = self._db().execute(f"SELECT {', '.join(FRAME_COLUMNS)} FROM frames WHERE experiment = ? ORDER BY ts_us",
                                  (experiment_id,)).fetchall()
        out = [dict(zip(FRAME_COLUMNS, row, strict=True)) for row in rows]
        for frame in out:
            frame["counts"] = json.loads(frame["counts"]) if frame["counts"] else None
            frame["estimates"] = json.loads(frame["estimates"]) if frame["estimates"] else None
            frame["image"] = json.loads(frame["image"]) if frame["image"] else {}
        return out

    def objects(self, experiment_id: str) -> Iterable[dict[str, Any]]:
        """Each object with its frame's `frame_index` and `image` (file, plane: where to put the box back)."""
        columns = ", ".join(f"o.{c}" for c in OBJECT_COLUMNS)
        cursor = self._db().execute(
            f"SELECT {columns}, f.frame_index, f.image FROM objects o LEFT JOIN frames f "
            "ON f.experiment = o.experiment AND f.ts_us = o.ts_us WHERE o.experiment = ? ORDER BY o.ts_us, o.rowid",
            (experiment_id,))
        for row in cursor:
            out = dict(zip(OBJECT_COLUMNS, row[: len(OBJECT_COLUMNS)], strict=True))
            out["frame_index"], image = row[-2], row[-1]
            out["image"] = json.loads(image) if image else {}
            yield out

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
