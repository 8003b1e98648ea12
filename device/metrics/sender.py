"""The background thread that drains the outbox into InfluxDB in batches, with backoff while it is down.

The frame loop only ever calls `Outbox.add`; this thread is the only thing that waits on the
network. A batch is marked sent only after the write returned success. A second thread keeps the
outbox inside its disk budget, so eviction never waits behind a network timeout. `state` is what
InfluxDB did (ok/down); a failing local store is `store_error`, never reported as InfluxDB down.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from device.metrics.settings import InfluxSettings
from device.metrics.outbox import Outbox

log = logging.getLogger(__name__)
MAINTAIN_EVERY_S = 2.0
MAX_RETRY_DELAY_S = 8.0  # while InfluxDB is down: retry often enough to catch its return quickly


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
        """Send one batch; returns how many points InfluxDB accepted (raises when it refused)."""
        ids, lines = self.outbox.pending_lines(self.settings.batch_size)
        if not ids:
            return 0
        if self._writer is None:
            self._writer = InfluxWriter(self.settings)
        self._writer.write(lines)
        self._accepted()
        self.outbox.mark_sent(ids)
        self.sent += len(ids)
        return len(ids)

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
            future.result()  # raises when InfluxDB refused: these ids stay in the outbox
            self._accepted()
            self.outbox.mark_sent(ids)
            self.sent += len(ids)
            total += len(ids)
            ids, lines = following
        return total

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
        if dropped:
            log.warning("outbox over its disk budget: dropped the %d oldest unsent points", dropped)
