"""The store thread: owns the connection, runs calls in order, commits them in groups.

Group commit: when calls queue up (many coroutines writing at once), the thread
runs up to ``MAX_GROUP`` of them inside one transaction, each in its own
savepoint, and commits once. With synchronous=FULL a commit is an fsync, so a
busy agent pays one fsync per group instead of one per call, while a call still
returns only after its change is durable. A call that raises has only its own
savepoint rolled back. If the group's transaction is lost (disk full, I/O
error), every call in it gets the error: none of them is reported done when its
change is not on disk.

A function marked ``@solo`` (one that commits in several steps, such as
``executions.prune``) runs alone, outside any group transaction.

A function marked ``@relaxed`` is one whose change may be lost to a power cut
(never to a crash of the agent: WAL with synchronous=NORMAL keeps a commit once
it is in the OS page cache), such as recording that a spawned execution started:
a reboot makes every unfinished execution ``lost`` whatever its row says. A
group made only of relaxed calls commits without the fsync; the next durable
commit's fsync of the WAL covers it (issue 8, docs/decisions/0002-store.md).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from agentd.store.errors import StoreFull

__all__ = ["MAX_GROUP", "Writer", "is_relaxed", "is_solo", "relaxed", "solo"]

log = logging.getLogger(__name__)

MAX_GROUP = 128
_SOLO_ATTR = "__squ_store_solo__"
_RELAXED_ATTR = "__squ_store_relaxed__"
# PRAGMA synchronous values (sqlite3.c): a relaxed group commits at NORMAL.
_SYNC_NORMAL = 1
_F = TypeVar("_F", bound=Callable[..., Any])


def solo(fn: _F) -> _F:
    """Mark a store function that manages its own transactions: it never runs in a group."""
    setattr(fn, _SOLO_ATTR, True)
    return fn


def is_solo(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` (or the function a ``functools.partial`` wraps) is marked ``@solo``."""
    while isinstance(fn, partial):
        fn = fn.func
    return bool(getattr(fn, _SOLO_ATTR, False))


def relaxed(fn: _F) -> _F:
    """Mark a store function whose change needs no fsync of its own (see the module doc)."""
    setattr(fn, _RELAXED_ATTR, True)
    return fn


def is_relaxed(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` (or the function a ``functools.partial`` wraps) is marked ``@relaxed``."""
    while isinstance(fn, partial):
        fn = fn.func
    return bool(getattr(fn, _RELAXED_ATTR, False))


@dataclass(slots=True)
class Call:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: Future[Any] = field(default_factory=Future)


class _Stop:
    """Queued by ``Writer.stop``: everything queued before it runs first."""


class Writer(threading.Thread):
    """Runs ``Call``s against one connection; start it, ``submit`` calls, then ``stop``."""

    def __init__(
        self,
        path: Path,
        connect: Callable[[], sqlite_utils.Database],
        close: Callable[[sqlite_utils.Database], None],
    ) -> None:
        super().__init__(name="squ-store", daemon=True)
        self.path = path
        self._connect = connect
        self._close = close
        self._queue: queue.SimpleQueue[Call | _Stop] = queue.SimpleQueue()
        self._synchronous = _SYNC_NORMAL
        self.ready: Future[sqlite_utils.Database] = Future()
        self.stopped: Future[None] = Future()

    def submit(self, call: Call) -> None:
        self._queue.put(call)

    def stop(self) -> None:
        """Ask the thread to finish what is queued, close the connection and exit."""
        self._queue.put(_Stop())

    def run(self) -> None:
        try:
            db = self._connect()
        except BaseException as exc:
            self.ready.set_exception(exc)
            self.stopped.set_result(None)
            return
        # The level the store was opened with; a relaxed group lowers it for its commit only.
        self._synchronous = int(db.conn.execute("PRAGMA synchronous").fetchone()[0])
        self.ready.set_result(db)
        try:
            self._loop(db)
        finally:
            try:
                self._close(db)
            finally:
                self.stopped.set_result(None)

    def _loop(self, db: sqlite_utils.Database) -> None:
        while True:
            first = self._queue.get()
            if isinstance(first, _Stop):
                return
            calls = [first]
            stop = False
            while len(calls) < MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(nxt, _Stop):
                    stop = True
                    break
                calls.append(nxt)
            try:
                self._run_in_order(db, calls)
            except Exception as exc:
                # The thread must outlive any one bad call, or every later call would hang.
                log.exception("store thread: a group of calls failed unexpectedly")
                self._fail(calls, exc)
            if stop:
                return

    def _run_in_order(self, db: sqlite_utils.Database, calls: list[Call]) -> None:
        group: list[Call] = []
        for call in calls:
            if is_solo(call.fn):
                self._run_group_synced(db, group)
                group = []
                self._run_alone(db, call)
            else:
                group.append(call)
        self._run_group_synced(db, group)

    def _run_group_synced(self, db: sqlite_utils.Database, calls: list[Call]) -> None:
        """``_run_group``, committing without an fsync when every call is ``@relaxed``."""
        lower = (
            bool(calls)
            and self._synchronous > _SYNC_NORMAL
            and all(is_relaxed(c.fn) for c in calls)
        )
        if not lower:
            self._run_group(db, calls)
            return
        # Set between transactions, so the lower level applies to this group's commit only.
        db.conn.execute(f"PRAGMA synchronous={_SYNC_NORMAL}")
        try:
            self._run_group(db, calls)
        finally:
            db.conn.execute(f"PRAGMA synchronous={self._synchronous}")

    def _run_alone(self, db: sqlite_utils.Database, call: Call) -> None:
        if not call.future.set_running_or_notify_cancel():
            return
        conn = db.conn
        try:
            result = call.fn(db, *call.args, **call.kwargs)
        except BaseException as exc:
            call.future.set_exception(self._translate(exc))
        else:
            call.future.set_result(result)
        finally:
            if conn.in_transaction:
                # A function that raised outside ``db.atomic()`` (or forgot to commit) must
                # not leak half a change into the next call's transaction.
                log.error("%s left a transaction open; rolled back", _name(call.fn))
                conn.rollback()

    def _run_group(self, db: sqlite_utils.Database, calls: list[Call]) -> None:
        """Run ``calls`` in one transaction, one savepoint each; resolve them after COMMIT."""
        if len(calls) <= 1:
            for call in calls:
                self._run_alone(db, call)
            return
        conn = db.conn
        outcomes: list[tuple[Call, bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for i, call in enumerate(calls):
                if not call.future.set_running_or_notify_cancel():
                    continue
                conn.execute("SAVEPOINT squ_call")
                try:
                    result = call.fn(db, *call.args, **call.kwargs)
                except Exception as exc:
                    if not conn.in_transaction:
                        # SQLite dropped the whole transaction (disk full, I/O error): the
                        # calls before this one lost their changes too; later ones never ran.
                        self._fail(calls[: i + 1], exc)
                        self._run_group(db, calls[i + 1 :])
                        return
                    conn.execute("ROLLBACK TO squ_call")
                    conn.execute("RELEASE squ_call")
                    outcomes.append((call, False, self._translate(exc)))
                else:
                    if not conn.in_transaction:
                        raise RuntimeError(f"{_name(call.fn)} ended the group's transaction")
                    conn.execute("RELEASE squ_call")
                    outcomes.append((call, True, result))
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.rollback()
            self._fail(calls, exc)
            return
        for call, ok, value in outcomes:
            if ok:
                call.future.set_result(value)
            else:
                call.future.set_exception(value)

    def _fail(self, calls: list[Call], exc: BaseException) -> None:
        """Every call not yet resolved gets ``exc``: none is reported done unless committed."""
        error = self._translate(exc)
        for call in calls:
            if not call.future.done():
                call.future.set_exception(error)

    def _translate(self, exc: BaseException) -> BaseException:
        if isinstance(exc, sqlite3.OperationalError) and is_disk_full(exc):
            full = StoreFull(self.path)
            full.__cause__ = exc
            return full
        return exc


def is_disk_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def _name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__name__", fn))
