"""The inbox on disk: one lossless PNG and one JSON record per kept frame, bounded in count and bytes.

Writes go PNG first, then the record (each through a temporary name and a rename), so a record
always has its frame; a delete removes the record first. On start, files without their partner
(a crash between the two) are removed: no orphan survives a restart."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from device.inbox.reasons import SPOT

log = logging.getLogger(__name__)
EventSink = Callable[[str, str], None]  # kind, message -> a device_event
EVICTED = "inbox_evicted"


@dataclass(frozen=True)
class InboxItem:
    """One kept frame: its record (reasons, the models' boxes) and the size of its PNG."""

    id: str
    record: dict[str, Any]
    png_bytes: int

    @property
    def created(self) -> float:
        return float(self.record.get("created", 0.0))

    @property
    def kinds(self) -> list[str]:
        return [str(r.get("kind")) for r in self.record.get("reasons", [])]

    @property
    def spot_only(self) -> bool:
        return self.kinds == [SPOT]

    def public(self) -> dict[str, Any]:
        return {**self.record, "bytes": self.png_bytes}


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class InboxStore:
    """The kept frames, oldest first; thread-safe (the loop's writer adds, the panel reads and deletes)."""

    def __init__(self, folder: Path, max_frames: int, max_bytes: int, events: EventSink | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_frames, self.max_bytes = max_frames, max_bytes
        self._events = events or (lambda kind, message: None)
        self._lock = threading.Lock()
        self._items: dict[str, InboxItem] = {}
        self.evicted = 0  # frames pushed out by the caps since start
        self._load()

    # ---- start -------------------------------------------------------------------------------
    def _load(self) -> None:
        for tmp in self.folder.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
        records = {p.stem: p for p in self.folder.glob("*.json")}
        frames = {p.stem: p for p in self.folder.glob("*.png")}
        for stem in set(records) ^ set(frames):  # one half of a pair: a crash between the writes
            (records.get(stem) or frames[stem]).unlink(missing_ok=True)
        for stem in set(records) & set(frames):
            try:
                record = json.loads(records[stem].read_text())
            except (OSError, ValueError):
                records[stem].unlink(missing_ok=True)
                frames[stem].unlink(missing_ok=True)
                continue
            self._items[stem] = InboxItem(stem, record, frames[stem].stat().st_size)
        self._items = dict(sorted(self._items.items(), key=lambda kv: kv[1].created))
        self._enforce()

    # ---- reading -----------------------------------------------------------------------------
    def items(self) -> list[InboxItem]:
        with self._lock:
            return list(self._items.values())

    def get(self, item_id: str) -> InboxItem:
        with self._lock:
            item = self._items.get(item_id)
        if item is None:
            raise KeyError(f"no frame '{item_id}' in the review inbox (reviewed, skipped or evicted)")
        return item

    def image(self, item_id: str) -> np.ndarray:
        """The kept frame, as captured (bit depth and channels)."""
        self.get(item_id)
        data = np.fromfile(self._png(item_id), np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise KeyError(f"the frame of '{item_id}' cannot be read")
        return image

    def hashes(self) -> np.ndarray:
        with self._lock:
            return np.array([int(i.record.get("hash", "0"), 16) for i in self._items.values()], np.uint64)

    def total_bytes(self) -> int:
        with self._lock:
            return sum(i.png_bytes for i in self._items.values())

    # ---- writing -----------------------------------------------------------------------------
    def add(self, image: np.ndarray, record: dict[str, Any]) -> InboxItem:
        """Keep a frame; then evict down to the caps (the oldest spot check first)."""
        ok, encoded = cv2.imencode(".png", image)
        if not ok:
            raise ValueError("OpenCV could not encode the frame as PNG")
        item_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        record = {**record, "id": item_id}
        data = encoded.tobytes()
        _write(self._png(item_id), data)
        _write(self._json(item_id), json.dumps(record, allow_nan=False).encode())
        item = InboxItem(item_id, record, len(data))
        with self._lock:
            self._items[item_id] = item
        self._enforce()
        return item

    def resize(self, max_frames: int, max_bytes: int) -> None:
        """New caps; over them, the oldest spot checks (then frames) go now, as for a new frame."""
        self.max_frames, self.max_bytes = max_frames, max_bytes
        self._enforce()

    def delete(self, item_id: str) -> None:
        """Remove a frame and its record (the record first: a crash leaves a PNG the next start removes)."""
        with self._lock:
            if self._items.pop(item_id, None) is None:
                raise KeyError(f"no frame '{item_id}' in the review inbox")
        self._json(item_id).unlink(missing_ok=True)
        self._png(item_id).unlink(missing_ok=True)

    def _enforce(self) -> None:
        while True:
            with self._lock:
                items = list(self._items.values())
                over = len(items) > self.max_frames or sum(i.png_bytes for i in items) > self.max_bytes
                if not over:
                    return
                spot = [i for i in items if i.spot_only]
                victim = (spot or items)[0]
            self.delete(victim.id)
            self.evicted += 1
            if self.evicted not in (1, 10, 100) and self.evicted % 1000:
                continue  # the counter says every one; the event log the first, 10th, 100th, every 1000th
            what = "spot check" if victim.spot_only else "frame (" + ", ".join(victim.kinds) + ")"
            self._events(EVICTED, f"review inbox full ({self.max_frames} frames, {self.max_bytes / 1e6:g} MB): "
                                  f"the oldest {what} {victim.id} was removed unreviewed ({self.evicted} since start)")

    def _png(self, item_id: str) -> Path:
        return self.folder / f"{_safe(item_id)}.png"

    def _json(self, item_id: str) -> Path:
        return self.folder / f"{_safe(item_id)}.json"


def _safe(item_id: str) -> str:
    if not item_id or any(c not in "0123456789abcdefT-" for c in item_id):
        raise KeyError(f"'{item_id[:40]}' is not an inbox frame id")
    return item_id
