"""``Store``: the agent's SQLite database behind one dedicated writer thread.

Open it once at start-up with ``await Store.open(path)``; every read and write
then goes through ``await store.call(fn, *args)``, where ``fn`` is one of the
small sync functions in ``executions``, ``jobs`` or ``meta`` taking the
``sqlite_utils.Database`` first. One thread owns the connection, so calls run
one at a time in the order they were made, and the event loop never blocks on
disk; calls that queue up are committed together (``writer.py``: group commit).
``await store.close()`` runs every call already made, then closes.

CLI commands that only read while the daemon runs use ``open_readonly(path)``:
WAL lets readers in other processes proceed while the daemon writes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Concatenate, Literal, ParamSpec, TypeVar

import sqlite_utils

from agentd.store import meta
from agentd.store.epoch import EPOCH_KEY, check_restored, record_high_water
from agentd.store.errors import StoreClosed, StoreFull, StoreTooNew, StoreUnreadable
from agentd.store.schema import migrate, unknown_migrations
from agentd.store.writer import Call, Writer, is_disk_full

__all__ = ["Store", "open_readonly"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# docs/decisions/0002-store.md: FULL, because the "queued" row committed before spawn
# must survive a power cut, or a rebooted agent could fire the same tick again.
Synchronous = Literal["FULL", "NORMAL"]
BUSY_TIMEOUT_S = 5.0
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024


class Store:
    """The agent's database; make one with ``Store.open`` (async) or ``Store.open_sync`` (CLI)."""

    def __init__(self, path: Path, writer: Writer) -> None:
        self.path = path
        self._writer = writer
        self._closed = False
        # Set by open, once: it only changes when the database is recreated or restored.
        self.epoch = ""

    @classmethod
    async def open(cls, path: Path, *, synchronous: Synchronous = "FULL") -> Store:
        """Create or migrate the database at ``path``, start its thread; call once at start-up."""
        writer = _start_writer(Path(path), synchronous)
        await asyncio.wrap_future(writer.ready)
        store = cls(Path(path), writer)
        store.epoch = str(await store.call(meta.get, EPOCH_KEY))
        return store

    @classmethod
    def open_sync(cls, path: Path, *, synchronous: Synchronous = "FULL") -> Store:
        """``open`` for code without an event loop (CLI commands, tests, benchmarks)."""
        writer = _start_writer(Path(path), synchronous)
        writer.ready.result()
        store = cls(Path(path), writer)
        store.epoch = str(store.call_sync(meta.get, EPOCH_KEY))
        return store

    async def call(
        self,
        fn: Callable[Concatenate[sqlite_utils.Database, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(db, *args, **kwargs)`` on the store thread; return once it is committed.

        Calls run one at a time in the order made. Once made, a call runs to its
        end even if the awaiting task is cancelled: a write is never half-skipped
        because its caller was shut down.
        """
        future = self._submit(fn, *args, **kwargs)
        return await asyncio.shield(asyncio.wrap_future(future))

    def call_sync(
        self,
        fn: Callable[Concatenate[sqlite_utils.Database, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``call`` for code without an event loop; never call it from the loop (it blocks)."""
        return self._submit(fn, *args, **kwargs).result()

    async def close(self) -> None:
        """Finish every call already made, then close the database. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._writer.stop()
        await asyncio.wrap_future(self._writer.stopped)

    def close_sync(self) -> None:
        """``close`` for code without an event loop."""
        if not self._closed:
            self._closed = True
            self._writer.stop()
        self._writer.stopped.result()

    def _submit(
        self,
        fn: Callable[Concatenate[sqlite_utils.Database, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Future[T]:
        if self._closed:
            raise StoreClosed(self.path)
        call = Call(fn, args, kwargs)
        self._writer.submit(call)
        return call.future


def open_readonly(path: Path) -> sqlite_utils.Database:
    """A read-only connection for CLI readers while the daemon may be writing; close it after."""
    path = Path(path)
    if not path.exists():
        raise StoreUnreadable(path, "no such file (has the agent been initialised?)")
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S
        )
        db = sqlite_utils.Database(conn, execute_plugins=False)
        if "executions" not in db.table_names():
            db.close()
            raise StoreUnreadable(path, "it has no squ-agentd tables (has the agent started?)")
        unknown = unknown_migrations(db)
    except sqlite3.DatabaseError as exc:
        raise StoreUnreadable(path, str(exc)) from exc
    if unknown:
        db.close()
        raise StoreTooNew(path, unknown)
    return db


def _start_writer(path: Path, synchronous: Synchronous) -> Writer:
    writer = Writer(path, partial(_connect, path, synchronous), _close)
    writer.start()
    return writer


def _connect(path: Path, synchronous: Synchronous) -> sqlite_utils.Database:
    """Runs on the store thread: open, set pragmas, migrate."""
    try:
        if not path.exists():
            # The database holds commands and environments: root-only from its first byte.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        elif path.is_file() and path.stat().st_mode & 0o077:
            # A file copied in or restored with loose permissions is tightened, not trusted.
            os.chmod(path, 0o600)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    except OSError as exc:
        raise StoreUnreadable(path, exc.strerror or str(exc)) from exc
    except sqlite3.Error as exc:
        raise StoreUnreadable(path, str(exc)) from exc
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise StoreUnreadable(path, f"cannot switch to WAL mode (got {mode!r})")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA trusted_schema=OFF")
        # After a burst the WAL file is truncated back to this at checkpoints, not kept big.
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        db = sqlite_utils.Database(conn, execute_plugins=False)
        migrate(db, path)
        check_restored(db)
        _record_high_water_or_warn(db)
    except sqlite3.OperationalError as exc:
        conn.close()
        if is_disk_full(exc):
            raise StoreFull(path) from exc
        raise StoreUnreadable(path, str(exc)) from exc
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreUnreadable(path, str(exc)) from exc
    except BaseException:
        conn.close()
        raise
    return db


def _record_high_water_or_warn(db: sqlite_utils.Database) -> None:
    # Only restore detection depends on it; a full disk must not stop the agent opening.
    try:
        record_high_water(db)
    except OSError as exc:
        log.warning("could not record the store's high-water mark: %s", exc)


def _close(db: sqlite_utils.Database) -> None:
    _record_high_water_or_warn(db)
    try:
        # Keeps query plans good as tables grow; cheap when nothing changed.
        db.execute("PRAGMA optimize")
    except sqlite3.Error as exc:
        log.warning("PRAGMA optimize failed on close: %s", exc)
    db.close()
