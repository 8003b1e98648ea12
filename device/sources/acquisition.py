"""A folder that acquisition software is writing into (Micro-Manager, NIS-Elements, ZEN): every new
file is analysed exactly once, in order of arrival, and only when it is complete.

A file counts as complete when its size and modification time have not changed for `settle_s`
and it decodes; one that stays undecodable for `give_up_s` is skipped, counted once and never
retried. What was done is appended to a journal (JSON lines, fsync'd), so a restart neither
skips nor repeats a file: the device resumes a half-read stack at its next plane.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from device.sources.base import ImageMeta, SourceError, SourceImage
from device.sources.images import IMAGE_SUFFIXES, file_planes

log = logging.getLogger(__name__)
JOURNAL_NAME = ".scopehive-journal.jsonl"


class Journal:
    """The done files and planes of one folder, kept in an append-only file that survives a crash
    (a line cut short by one is ignored)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.planes: dict[str, int] = {}  # file -> planes done
        self.finished: set[str] = set()  # file -> every plane done, or skipped as bad
        self._lock = threading.Lock()
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    self._apply(entry)
                except (ValueError, KeyError, TypeError):
                    continue  # the last line of a killed run may be half written

    def _apply(self, entry: dict[str, object]) -> None:
        name = str(entry["file"])
        if "plane" in entry:
            self.planes[name] = max(self.planes.get(name, 0), int(entry["plane"]) + 1)  # type: ignore[call-overload]
        if entry.get("finished") or entry.get("bad"):
            self.finished.add(name)

    def record(self, **entry: object) -> None:
        with self._lock:
            self._apply(entry)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")
                out.flush()
                os.fsync(out.fileno())


@dataclass
class _Pending:
    """A file seen in the folder and not yet done: how long it has looked unchanged."""

    path: Path
    stat: tuple[int, int]  # size, mtime_ns
    since: float  # monotonic time the stat was first seen like this


@dataclass
class _Reading:
    """The file whose planes are being handed out."""

    name: str
    planes: Generator[SourceImage, None, None]
    next_index: int  # index of the next plane within the file (the journal's planes done when it was opened)


class AcquisitionFolderSource:
    """New files of a folder, each once, in order of arrival (live acquisitions; the cycling
    ImageFolderSource is for demos)."""

    live = False  # never drop: every file must be analysed

    def __init__(self, folder: str, journal: str = "", settle_s: float = 1.0, give_up_s: float = 30.0, channel: int | str | None = None) -> None:
        self.name = folder
        self.folder = Path(folder)
        self.settle_s = settle_s
        self.give_up_s = max(give_up_s, settle_s)
        self.poll_s = min(0.2, settle_s / 2) if settle_s > 0 else 0.05
        self._channel = channel
        self._journal_path = Path(journal) if journal else self.folder / JOURNAL_NAME
        self.journal: Journal | None = None
        self._pending: list[_Pending] = []  # in order of arrival
        self._taken: set[str] = set()  # files of this run that left the pending list
        self._current: _Reading | None = None
        self._totals: dict[str, int] = {}  # file -> its plane count, once its end was reached
        self._wake = threading.Event()
        self._end_lock = threading.Lock()  # the file's end and its last acknowledgement may race
        self.bad_files = 0

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"{self.folder}: the acquisition folder is not there (yet)")
        try:
            self._journal_path.parent.mkdir(parents=True, exist_ok=True)
            self._journal_path.touch()
        except OSError as exc:
            raise SourceError(f"{self._journal_path}: cannot write the journal of done files ({exc}); "
                              "give a writable one with ?journal=/data/acquisition.jsonl", permanent=True) from exc
        self.journal = Journal(self._journal_path)
        self._pending, self._taken, self._totals = [], set(), {}
        self._wake.clear()

    def _scan(self) -> None:
        """Add files that appeared since the last look, oldest modification first (the order
        acquisition software wrote them), then by name."""
        assert self.journal is not None
        known = {p.path.name for p in self._pending} | self.journal.finished | self._taken
        new: list[tuple[int, str, Path, os.stat_result]] = []
        for entry in os.scandir(self.folder):
            if entry.name.startswith(".") or entry.name in known or Path(entry.name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                stat = entry.stat()
            except OSError:
                continue  # vanished between listing and stat
            if entry.is_file():
                new.append((stat.st_mtime_ns, entry.name, Path(entry.path), stat))
        now = time.monotonic()
        for _, _, path, stat in sorted(new):
            self._pending.append(_Pending(path, (stat.st_size, stat.st_mtime_ns), now))

    def _settled(self, item: _Pending) -> bool:
        """Whether the file has not changed for settle_s (a writer still at it keeps changing it)."""
        try:
            stat = item.path.stat()
        except OSError:
            return False
        now = time.monotonic()
        if (stat.st_size, stat.st_mtime_ns) != item.stat:
            item.stat, item.since = (stat.st_size, stat.st_mtime_ns), now
            return False
        return stat.st_size > 0 and now - item.since >= self.settle_s

    def _start_next(self) -> bool:
        """Open the oldest pending file once it is complete; False while it is still being written."""
        assert self.journal is not None
        head = self._pending[0]
        if not head.path.exists():
            self._pending.pop(0)  # removed before it was complete: nothing to analyse
            return True
        if not self._settled(head):
            return False
        done = self.journal.planes.get(head.path.name, 0)
        planes = file_planes(head.path, self._channel, skip=done)
        try:
            first = next(planes, None)
        except Exception as exc:  # decoders fail in many ways on a damaged file: never retry it forever
            if time.monotonic() - head.since < self.give_up_s:
                return False  # maybe a writer pausing mid-file: wait for it to change or to give up
            self._pending.pop(0)
            self._taken.add(head.path.name)
            self._give_up(head.path.name, str(exc))
            return True
        self._pending.pop(0)
        self._taken.add(head.path.name)
        if first is None:  # every plane was done before a restart
            self.journal.record(file=head.path.name, finished=True)
            return True
        self._current = _Reading(head.path.name, self._chain(first, planes), done)
        return True

    @staticmethod
    def _chain(first: SourceImage, rest: Generator[SourceImage, None, None]) -> Generator[SourceImage, None, None]:
        yield first
        yield from rest

    def _give_up(self, name: str, reason: str) -> None:
        assert self.journal is not None
        self.bad_files += 1
        log.warning("skipping %s for good: %s", name, reason)
        self.journal.record(file=name, bad=reason[:300])

    def _next_plane(self) -> SourceImage | None:
        """The next plane of the current file, numbered for the journal; None at its end."""
        assert self._current is not None and self.journal is not None
        reading = self._current
        try:
            plane = next(reading.planes, None)
        except Exception as exc:  # a damaged plane: the rest of the file is lost
            self._current = None
            self._give_up(reading.name, f"plane {reading.next_index}: {exc}")
            return None
        if plane is None:
            self._current = None
            with self._end_lock:
                self._totals[reading.name] = reading.next_index
                if self.journal.planes.get(reading.name, 0) >= reading.next_index:  # its last plane was already acknowledged
                    self.journal.record(file=reading.name, finished=True)
            return None
        index = reading.next_index
        reading.next_index += 1
        meta = plane.meta
        numbered = ImageMeta(meta.um_per_pixel, meta.calibration, meta.acquired_at, {**meta.fields, "file_plane": index}, f"{reading.name}\n{index}")
        return SourceImage(plane.image, numbered)

    def read(self) -> SourceImage | None:
        """The next plane of the next complete file; waits for one (returns None only once
        interrupted by the capture thread stopping)."""
        if self.journal is None:
            raise SourceError(f"{self.folder}: read before open")
        while not self._wake.is_set():
            if self._current is not None:
                plane = self._next_plane()
                if plane is not None:
                    return plane
                continue
            if not self._pending:
                self._scan_or_fail()
            if self._pending and self._start_next():
                continue
            self._wake.wait(self.poll_s)
        return None

    def _scan_or_fail(self) -> None:
        try:
            self._scan()
        except OSError as exc:
            raise SourceError(f"{self.folder}: the acquisition folder cannot be read ({exc})") from exc

    def acknowledge(self, meta: ImageMeta) -> None:
        """Journal a frame as done (the capture calls it once the consumer has the frame, or once
        its results are stored: see Capture(auto_done=False)); the file's last plane finishes it."""
        if self.journal is None or "\n" not in meta.receipt:
            return
        name, index_text = meta.receipt.split("\n", 1)
        index = int(index_text)
        with self._end_lock:
            finished = self._totals.get(name) == index + 1
            self.journal.record(file=name, plane=index, **({"finished": True} if finished else {}))

    def interrupt(self) -> None:
        """Make a waiting `read()` return (the capture thread is stopping)."""
        self._wake.set()

    def close(self) -> None:
        self._wake.set()
        if self._current is not None:
            self._current.planes.close()
            self._current = None
        self._pending = []
