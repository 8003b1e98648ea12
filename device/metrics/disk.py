"""The outbox's disk budget, SQLite transactions that can never be left open, and the one way
every store opens its SQLite file (`open_wal`).

SQLite in WAL mode keeps three files: the database, the write-ahead log and its shared-memory
index. A full disk sees all three, so the budget (`outbox.max_mb`) is split between them: the WAL
gets a fixed share that checkpoints keep it inside, the index its fixed size, the rows the rest.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

SHM_BYTES = 32 * 1024  # the WAL index: 32 KiB covers a WAL of up to ~4,000 pages
SMALL_BUDGET_BYTES = 64 * 1024 * 1024
WAL_SHARE = 0.25
WAL_MIN_BYTES = 48 * 1024  # a few commits' worth, so tiny budgets do not checkpoint on every frame
WAL_MAX_BYTES = 16 * 1024 * 1024  # past this a checkpoint only costs more, it buys nothing


@dataclass(frozen=True)
class DiskBudget:
    """How `max_bytes` is shared out; every figure in bytes."""

    max_bytes: int

    @property
    def page_size(self) -> int:
        """Small budgets get small pages: one commit writes a few pages to the WAL, so 1 KiB pages
        keep a commit's WAL footprint (and eviction's) a quarter of what 4 KiB pages cost."""
        return 1024 if self.max_bytes < SMALL_BUDGET_BYTES else 4096

    @property
    def wal_bytes(self) -> int:
        """The WAL is checkpointed (and truncated) before it grows past this."""
        return int(min(max(self.max_bytes * WAL_SHARE, WAL_MIN_BYTES), WAL_MAX_BYTES))

    @property
    def rows_bytes(self) -> int:
        """The database file itself (rows, indexes, free pages) stays under this."""
        return max(self.max_bytes - self.wal_bytes - SHM_BYTES, 0)

    def upkeep_wanted(self, total: int, wal: int) -> bool:
        """Near the budget: the upkeep thread should run now (and checkpoint with TRUNCATE)."""
        return total > self.max_bytes * 0.8 or wal > self.wal_bytes * 0.4

    def upkeep_needed(self, total: int, wal: int) -> bool:
        """At the budget: the writer does the upkeep itself before it commits again (backpressure)."""
        return total > self.max_bytes * 0.92 or wal > self.wal_bytes * 0.7


def footprint(path: Path) -> tuple[int, int]:
    """(whole footprint, WAL alone) in bytes: database + WAL + shared-memory index on disk."""
    sizes = []
    for suffix in ("", "-wal", "-shm"):
        try:
            sizes.append(os.stat(f"{path}{suffix}").st_size)
        except FileNotFoundError:
            sizes.append(0)
    return sum(sizes), sizes[1]


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error.

    IMMEDIATE takes the write lock up front (waiting under the busy timeout), so a transaction
    that reads and then deletes can never be refused half-way with "database is locked"; and the
    rollback means an error never leaves the connection inside a transaction, which would make
    every later BEGIN fail ("cannot start a transaction within a transaction").
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with suppress(sqlite3.Error):  # a broken connection: its owner reconnects (Outbox.reconnect)
                db.execute("ROLLBACK")
        raise


def open_wal(path: Path, timeout: float = 30.0) -> sqlite3.Connection:
    """A connection to a store shared by threads and processes (the experiment record and the
    track log share experiments.sqlite): autocommit (transactions are explicit), WAL so readers
    never block the writer, synchronous NORMAL so a commit survives a crash or SIGKILL of the
    process (not a power cut) without an fsync per commit. Every opener of one file uses this, so
    their durability agrees. The outbox adds its own page-size and checkpoint settings."""
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db
