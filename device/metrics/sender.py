"""The background thread that drains the outbox into InfluxDB in batches, with backoff while it is down.

The frame loop only ever calls `Outbox.add`; this thread is the only thing that waits on the
network. A batch is marked sent only after the write returned success. A second thread keeps the
outbox inside its disk budget, so eviction never waits behind a network timeout. `state` is what
InfluxDB did (ok/down); a failing local store is `store_error`, never reported as InfluxDB down.

A batch InfluxDB refuses as malformed (400, 422; 413 too large) is split in halves until every
refused part is a single point: those go to the outbox's dead letters with InfluxDB's reason, the
rest is delivered, and InfluxDB counts as up (it answered). Auth (401/403), a missing bucket (404),
throttling (429) and 5xx are InfluxDB's state, not the points': the batch stays and is retried.
Replaying the accepted part is harmless: InfluxDB 1.x writes the good lines of a refused batch,
and the same point written twice is one point.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from device.metrics.outbox import Outbox, Refused
from device.metrics.settings import InfluxSettings

log = logging.getLogger(__name__)
MAINTAIN_EVERY_S = 2.0
MAX_RETRY_DELAY_S = 8.0  # while InfluxDB is down: retry often enough to catch its return quickly
MALFORMED_STATUS = frozenset({400, 413, 422})  # the points' fault: split the batch, dead-letter what stays refused


def refusal(exc: BaseException) -> str | None:
    """InfluxDB's reason when `exc` says the points themselves are unacceptable, else None (down,
    auth, throttled: retry the whole batch later)."""
    status = getattr(exc, "status", None)
    if status not in MALFORMED_STATUS:
        return None
    body = getattr(exc, "body", None)
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    detail = (document.get("error") or document.get("message")) if isinstance(document, dict) else None
    detail = detail or text
    return f"HTTP {status}: {str(detail or getattr(exc, 'reason', '') or exc).strip()}"[:500]


class InfluxWriter:
    """influxdb-client's v2 write API, synchronous, microsecond precision."""

    def __init__(self, settings: InfluxSettings) -> None:
        from influxdb_client import InfluxDBClient, WriteOptions
        from influxdb_client.client.write_api import WriteType

        self._settings = settings
        self._client = InfluxDBClient(url=settings.url, token=settings.token or "none", org=settings.org,
                                      timeout=int(settings.timeout_s * 1000))
        # No client-side retries: a retrying write can block for minutes; the outbox is the retry.
        self._api = self._client.write_api(write_options=WriteOptions(write_type=WriteType.synchronous, max_retries=0))

    def write(self, lines: list[str]) -> None:
        from influxdb_client import WritePrecision

        self._api.write(bucket=self._settings.bucket, org=self._settings.org, record=lines,
                        write_precision=WritePrecision.US)  # type: ignore[arg-type]

    def close(self) -> None:
        self._api.close()
        self._client.close()


class OutboxSender:
    """Sends pending points oldest first; `flush()` waits until the queue is empty (clean exit)."""

    def __init__(self, outbox: Outbox, settings: InfluxSettings, writer: Any = None) -> None:
        self.outbox = outbox
        self.settings = settings
        self.state = "idle" if settings.url else "disabled"  # idle | ok | down | disabled
        self.error = ""
        self.store_error = ""
        self.sent = 0
        self.dead_lettered = 0  # points this run moved to the dead letters (the outbox counts all runs)
        self.last_refusal = ""  # InfluxDB's reason for the latest one
        self._writer = writer
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)
        self._upkeep = threading.Thread(target=self._run_upkeep, name="outbox-upkeep", daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="influx-write")

    def start(self) -> OutboxSender:
        self._thread.start()
        self._upkeep.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.outbox.upkeep_due.set()
        self._thread.join(timeout=self.settings.timeout_s + 5)
        self._upkeep.join(timeout=10)
        self._pool.shutdown(wait=True)
        if self._writer is not None:
            self._writer.close()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every point went out (True) or the timeout passed (False)."""
        if not self.settings.url:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._wake.set()
            if self.outbox.depth() == 0:
                return True
            time.sleep(0.05)
        return self.outbox.depth() == 0

    def send_once(self) -> int:
        """Send one batch; returns how many points InfluxDB accepted (raises when it is down)."""
        ids, lines = self.outbox.pending_lines(self.settings.batch_size)
        if not ids:
            return 0
        if self._writer is None:
            self._writer = InfluxWriter(self.settings)
        try:
            self._writer.write(lines)
        except Exception as exc:
            return self._split_refused(ids, lines, exc)
        return self._delivered(ids)

    def drain(self) -> int:
        """Send everything pending, overlapping the encoding of batch k+1 with the write of batch k
        (the write waits on the network with the GIL released); returns the points accepted."""
        if self._writer is None:
            self._writer = InfluxWriter(self.settings)
        writer, limit, total = self._writer, self.settings.batch_size, 0
        ids, lines = self.outbox.pending_lines(limit)
        while ids:
            future = self._pool.submit(writer.write, lines)
            following = self.outbox.pending_lines(limit, after_id=ids[-1]) if len(ids) == limit else ([], [])
            try:
                future.result()
            except Exception as exc:  # down: raises again, these ids stay; malformed: split
                total += self._split_refused(ids, lines, exc)
            else:
                total += self._delivered(ids)
            ids, lines = following
        return total

    def _delivered(self, ids: list[int]) -> int:
        self._accepted()
        self.outbox.mark_sent(ids)
        self.sent += len(ids)
        return len(ids)

    def _split_refused(self, ids: list[int], lines: list[str], exc: Exception) -> int:
        """InfluxDB refused the batch: re-raise unless the points are at fault; then halve the
        refused parts until each is one point, deliver the rest, dead-letter the single refused
        points. Returns the points delivered. Raises (keeping what is left) if InfluxDB goes down
        half-way; the dead letters found so far are kept."""
        reason = refusal(exc)
        if reason is None:
            raise exc
        self._accepted()  # it answered: up, whatever it thought of the points
        assert self._writer is not None
        delivered, refused = 0, []
        parts = [(ids, lines, reason)]
        try:
            while parts:
                part_ids, part_lines, why = parts.pop()
                if len(part_ids) == 1:
                    refused.append(Refused(part_ids[0], part_lines[0], why))
                    continue
                half = len(part_ids) // 2
                for sub_ids, sub_lines in ((part_ids[:half], part_lines[:half]), (part_ids[half:], part_lines[half:])):
                    try:
                        self._writer.write(sub_lines)
                    except Exception as sub_exc:
                        sub_reason = refusal(sub_exc)
                        if sub_reason is None:
                            raise
                        parts.append((sub_ids, sub_lines, sub_reason))
                    else:
                        delivered += self._delivered(sub_ids)
        finally:
            self._dead_letter(refused)
        return delivered

    def _dead_letter(self, refused: list[Refused]) -> None:
        if not refused:
            return
        self.outbox.dead_letter(refused)
        self.dead_lettered += len(refused)
        self.last_refusal = refused[-1].reason
        log.error("InfluxDB refused %d point(s) as malformed; moved to the outbox's dead letters: %s (first: %s)",
                  len(refused), refused[-1].reason, refused[0].line[:200])

    def _run(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            if not self.settings.url:
                self._stop.wait(MAINTAIN_EVERY_S)
                continue
            try:
                self.drain()
            except sqlite3.Error as exc:  # the local store failed, not InfluxDB: fresh connection, retry
                self._store_failed(exc)
                self._stop.wait(min(delay, 1.0))
                continue
            except Exception as exc:  # network, HTTP 5xx, auth: report, keep the points, retry later
                self._report_down(exc)
                self._stop.wait(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY_S)
                continue
            self.store_error, delay = "", 1.0
            self._wake.wait(self.settings.flush_interval_s)
            self._wake.clear()
        self.outbox.close()

    def _accepted(self) -> None:
        """InfluxDB took a batch: it is up, whatever happens to the bookkeeping afterwards."""
        if self.state != "ok":
            log.info("InfluxDB %s accepts points again", self.settings.url)
        self.state, self.error = "ok", ""

    def _store_failed(self, exc: sqlite3.Error) -> None:
        """Report (once per distinct error, not once per retry) and drop this thread's connection."""
        message = f"{type(exc).__name__}: {str(exc)[:300]}"
        if message != self.store_error:
            log.error("outbox store error (reconnecting): %s", message)
        self.store_error = message
        self.outbox.reconnect()

    def _run_upkeep(self) -> None:
        """Every MAINTAIN_EVERY_S, or as soon as a writer says the outbox nears its budget."""
        while not self._stop.is_set():
            self._maintain()
            self.outbox.upkeep_due.wait(MAINTAIN_EVERY_S)
            self.outbox.upkeep_due.clear()
        self.outbox.close()

    def _report_down(self, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {str(exc)[:300]}"
        log.debug("write failed: %s", message)
        if self.state != "down":
            log.warning("InfluxDB %s unreachable, keeping points in the outbox: %s", self.settings.url, message)
        self.state, self.error = "down", message

    def _maintain(self) -> None:
        try:
            dropped = self.outbox.maintain()
        except Exception as exc:  # a full disk must not kill the sender
            if isinstance(exc, sqlite3.Error):
                self._store_failed(exc)
            else:
                log.error("outbox maintenance failed: %s", exc)
            return
        if dropped:  # the outbox logged the interval and wrote its device_event
            log.debug("outbox upkeep dropped %d unsent points", dropped)
