"""The console's local SQLite mirror of every agent's history and jobs.

The TUI reads only from here; the fleet's links write here (history sync,
DESIGN.md "Protocol"): each batch is upserted by (agent, execution id) with
the agent's cursor in the same transaction, so a repeated batch changes
nothing and a crash anywhere loses nothing. A row is only replaced by a
newer version of itself (higher ``seq`` in the same epoch), so batches that
arrive out of order never move a row backwards.

An agent's store carries an ``epoch``: a batch with an epoch the mirror has not
seen resets that agent's cursor to zero (and records the change), so the
link resyncs from the start instead of trusting an old cursor. When an agent
says its history now begins above our cursor, ``record_gap`` keeps the fact.

Reads are small indexed queries (milliseconds on millions of rows): the Runs
view pages with keyset queries (``page_runs``) and jumps with ``page_runs_at``.
One connection guarded by a lock, so the UI thread and a link thread may share
a ``Mirror``; SQLite runs in WAL mode so readers never wait for a writer.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import sqlite_utils

from shared.enums import ExecutionStatus
from shared.errors import SquError
from shared.models import Execution, Job, JobRecord

__all__ = [
    "Cursor",
    "JobSummary",
    "Mirror",
    "MirrorError",
    "RunFilter",
    "RunKey",
    "StoredJob",
    "StoredRun",
    "ulid_floor",
]

# The columns of ``executions`` besides ``agent`` and ``epoch``, in Execution's order.
EXEC_COLUMNS: tuple[str, ...] = tuple(f for f in Execution.__struct_fields__)
_PARAMS_AT = EXEC_COLUMNS.index("params")  # the one column stored as JSON text
_ALL_COLUMNS = ("agent", "epoch", *EXEC_COLUMNS)

RunKey = tuple[str, str]  # (execution id, agent): the Runs view's sort key, newest first


class MirrorError(SquError):
    code = "mirror"


class StoredRun(NamedTuple):
    """An execution as mirrored, with the agent it came from."""

    agent: str
    execution: Execution

    @property
    def key(self) -> RunKey:
        return (self.execution.id, self.agent)


class StoredJob(NamedTuple):
    agent: str
    record: JobRecord


class Cursor(NamedTuple):
    epoch: str
    seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFilter:
    """What the Runs view shows. Empty fields do not filter.

    ``text`` is a regular expression matched against "job agent status
    trigger id"; ``invert`` keeps the rows that do not match (CONSOLE.md
    ``/`` filter, ``!`` inverts). ``since``/``until`` bound the time encoded in
    the execution id (its creation, or its scheduled tick).
    """

    job: str = ""
    agent: str = ""
    statuses: frozenset[str] = frozenset()
    trigger: str = ""
    since: float | None = None
    until: float | None = None
    text: str = ""
    invert: bool = False

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters (``1`` when nothing filters)."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.job:
            clauses.append("job = ?")
            params.append(self.job)
        if self.agent:
            clauses.append("agent = ?")
            params.append(self.agent)
        if self.statuses:
            marks = ",".join("?" * len(self.statuses))
            clauses.append(f"status IN ({marks})")
            params.extend(sorted(self.statuses))
        if self.trigger:
            clauses.append("trigger = ?")
            params.append(self.trigger)
        if self.since is not None:
            clauses.append("id >= ?")
            params.append(ulid_floor(self.since))
        if self.until is not None:
            clauses.append("id < ?")
            params.append(ulid_floor(self.until))
        if self.text:
            _compiled(self.text)  # raises MirrorError naming the bad pattern
            test = (
                "squ_match(?, job || ' ' || agent || ' ' || status || ' ' || trigger || ' ' || id)"
            )
            clauses.append(f"NOT {test}" if self.invert else test)
            params.append(self.text)
        return (" AND ".join(clauses) or "1", params)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSummary:
    """One fleet job (the same name on several agents) for the Jobs view."""

    name: str
    agents: tuple[str, ...]
    job: Job  # the definition on the first agent (alphabetically)
    sources: tuple[str, ...]
    version: int
    is_enabled: bool
    last_status: str = ""
    last_at: float | None = None
    success_rate: float | None = None  # over the last finished runs; None: no runs yet
    durations_ms: tuple[int, ...] = field(default_factory=tuple)  # oldest first
    running: int = 0


_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_floor(ts: float) -> str:
    """The smallest ULID at time ``ts`` (epoch s): ids compare like their times."""
    value = max(0, int(ts * 1000)) << 80
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    found = _PATTERNS.get(pattern)
    if found is None:
        try:
            found = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise MirrorError(
                f"filter {pattern!r} is not a valid regular expression: {exc}"
            ) from None
        if len(_PATTERNS) > 64:
            _PATTERNS.clear()
        _PATTERNS[pattern] = found
    return found


def _squ_match(pattern: str, text: str | None) -> int:
    return 1 if text is not None and _compiled(pattern).search(text) else 0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    agent TEXT NOT NULL, epoch TEXT NOT NULL,
    id TEXT NOT NULL, job TEXT NOT NULL, server TEXT NOT NULL, run_id TEXT NOT NULL,
    trigger TEXT NOT NULL, status TEXT NOT NULL, seq INTEGER NOT NULL,
    scheduled_for REAL, created_at REAL, started_at REAL, finished_at REAL,
    duration_ms INTEGER, exit_code INTEGER, signal INTEGER, retry_index INTEGER,
    pid INTEGER, stdout_tail TEXT, stderr_tail TEXT, log_bytes INTEGER,
    log_dropped_bytes INTEGER, cpu_time_s REAL, peak_rss_kb INTEGER,
    triggered_by TEXT, approved_by TEXT, params TEXT, reason TEXT,
    PRIMARY KEY (agent, id)
);
CREATE INDEX IF NOT EXISTS ix_exec_order ON executions(id, agent);
CREATE INDEX IF NOT EXISTS ix_exec_job ON executions(job, id, agent);
CREATE INDEX IF NOT EXISTS ix_exec_status ON executions(status, id, agent);
-- Issue 8: (agent, id) is the primary key's own index already; this copy only slowed
-- every sync write (~15 %). Dropped from mirrors made before.
DROP INDEX IF EXISTS ix_exec_agent;
CREATE TABLE IF NOT EXISTS cursors (
    agent TEXT PRIMARY KEY, epoch TEXT NOT NULL, seq INTEGER NOT NULL, updated_at REAL
);
CREATE TABLE IF NOT EXISTS epochs (
    agent TEXT NOT NULL, epoch TEXT NOT NULL, first_seen REAL, PRIMARY KEY (agent, epoch)
);
CREATE TABLE IF NOT EXISTS gaps (
    agent TEXT NOT NULL, epoch TEXT NOT NULL, after_seq INTEGER NOT NULL,
    floor_seq INTEGER NOT NULL, recorded_at REAL,
    PRIMARY KEY (agent, epoch, after_seq)
);
CREATE TABLE IF NOT EXISTS jobs (
    agent TEXT NOT NULL, name TEXT NOT NULL, definition TEXT NOT NULL,
    version INTEGER NOT NULL, source TEXT NOT NULL, definition_hash TEXT,
    created_at REAL, updated_at REAL, updated_by TEXT,
    PRIMARY KEY (agent, name)
);
"""

_INSERT = (
    f"INSERT INTO executions ({', '.join(_ALL_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_ALL_COLUMNS))}) "
    "ON CONFLICT (agent, id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _ALL_COLUMNS if c not in ("agent", "id"))
    # Only a newer version of the row replaces it: a replayed or late batch is a no-op.
    + " WHERE excluded.epoch != executions.epoch OR excluded.seq >= executions.seq"
)

_SELECT = ", ".join(_ALL_COLUMNS)
_FINISHED = (
    ExecutionStatus.SUCCESS,
    ExecutionStatus.FAILED,
    ExecutionStatus.TIMEOUT,
    ExecutionStatus.LOST,
)


def _row_values(agent: str, epoch: str, ex: Execution) -> tuple[Any, ...]:
    # Issue 8: one C call for the fields instead of a getattr and a set test per column
    # (this was a third of a sync batch's mirror write). params keeps json.dumps' text,
    # so rows written before and after read the same; most runs have none.
    values = msgspec.structs.astuple(ex)
    params = values[_PARAMS_AT]
    text = json.dumps(params) if params else "{}"
    return (agent, epoch, *values[:_PARAMS_AT], text, *values[_PARAMS_AT + 1 :])


def _to_run(row: Sequence[Any]) -> StoredRun:
    data = dict(zip(_ALL_COLUMNS, row, strict=True))
    agent = data.pop("agent")
    data.pop("epoch")
    data["params"] = json.loads(data["params"] or "{}")
    for key in ("stdout_tail", "stderr_tail", "triggered_by", "approved_by", "reason"):
        data[key] = data[key] or ""
    return StoredRun(agent, msgspec.convert(data, Execution))


class Mirror:
    """The mirror file. Open with ``Mirror.open(path)``; close when the app exits."""

    def __init__(self, db: sqlite_utils.Database, path: Path | None) -> None:
        self.db = db
        self.path = path
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: str | Path) -> Mirror:
        """Open (or create) the mirror at ``path``, WAL mode, schema in place."""
        conn = sqlite3.connect(str(path), check_same_thread=False)
        db = sqlite_utils.Database(conn)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        conn.create_function("squ_match", 2, _squ_match, deterministic=True)
        return cls(db, Path(path))

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @contextmanager
    def _atomic(self) -> Iterator[sqlite_utils.Database]:
        with self._lock, self.db.atomic() as db:
            yield db

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self.db.execute(sql, list(params)).fetchall()

    # -- history sync (called by the fleet's links) ---------------------------

    def cursor(self, agent: str) -> Cursor | None:
        """Where ``agent``'s sync stands: ask the agent for everything after ``seq``."""
        rows = self._query("SELECT epoch, seq FROM cursors WHERE agent = ?", [agent])
        return Cursor(rows[0][0], rows[0][1]) if rows else None

    def upsert_executions(
        self,
        agent: str,
        epoch: str,
        rows: Iterable[Execution],
        next_seq: int,
        *,
        now: float = 0.0,
    ) -> list[str]:
        """Store one sync batch and advance the cursor to ``next_seq``, atomically.

        A batch from a new ``epoch`` first resets the cursor (and records the
        epoch). Returns the ids stored, for ``ExecutionsChanged``.
        """
        rows = list(rows)
        with self._atomic() as db:
            current = db.execute("SELECT epoch, seq FROM cursors WHERE agent = ?", [agent])
            found = current.fetchone()
            seq = 0 if found is None or found[0] != epoch else int(found[1])
            if found is None or found[0] != epoch:
                db.execute(
                    "INSERT OR IGNORE INTO epochs (agent, epoch, first_seen) VALUES (?, ?, ?)",
                    [agent, epoch, now],
                )
            db.conn.executemany(_INSERT, [_row_values(agent, epoch, ex) for ex in rows])
            # The cursor never goes back within an epoch (DESIGN.md: seq never goes back).
            db.execute(
                "INSERT INTO cursors (agent, epoch, seq, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (agent) DO UPDATE SET epoch = excluded.epoch, "
                "seq = excluded.seq, updated_at = excluded.updated_at",
                [agent, epoch, max(seq, next_seq), now],
            )
        return [ex.id for ex in rows]

    def reset_epoch(self, agent: str, epoch: str, *, now: float = 0.0) -> None:
        """The agent reports ``epoch``; if it is new, restart ``agent``'s cursor at zero."""
        with self._atomic() as db:
            found = db.execute("SELECT epoch FROM cursors WHERE agent = ?", [agent]).fetchone()
            if found is not None and found[0] == epoch:
                return
            db.execute(
                "INSERT OR IGNORE INTO epochs (agent, epoch, first_seen) VALUES (?, ?, ?)",
                [agent, epoch, now],
            )
            db.execute(
                "INSERT INTO cursors (agent, epoch, seq, updated_at) VALUES (?, ?, 0, ?) "
                "ON CONFLICT (agent) DO UPDATE SET epoch = excluded.epoch, seq = 0, "
                "updated_at = excluded.updated_at",
                [agent, epoch, now],
            )

    def epochs(self, agent: str) -> list[str]:
        """Every epoch seen for ``agent``, oldest first."""
        rows = self._query(
            "SELECT epoch FROM epochs WHERE agent = ? ORDER BY first_seen, rowid", [agent]
        )
        return [r[0] for r in rows]

    def record_gap(
        self, agent: str, epoch: str, after_seq: int, floor_seq: int, *, now: float = 0.0
    ) -> None:
        """The agent's history now starts at ``floor_seq``, above our ``after_seq``: lost rows."""
        with self._atomic() as db:
            db.execute(
                "INSERT OR IGNORE INTO gaps (agent, epoch, after_seq, floor_seq, recorded_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [agent, epoch, after_seq, floor_seq, now],
            )

    def gaps(self, agent: str) -> list[tuple[str, int, int]]:
        """(epoch, after_seq, floor_seq) for each recorded gap of ``agent``."""
        rows = self._query(
            "SELECT epoch, after_seq, floor_seq FROM gaps WHERE agent = ? ORDER BY rowid", [agent]
        )
        return [(r[0], r[1], r[2]) for r in rows]

    # -- jobs ------------------------------------------------------------------

    def put_jobs(self, agent: str, records: Iterable[JobRecord], *, replace_all: bool) -> None:
        """Store ``agent``'s job records; ``replace_all`` drops the jobs not listed."""
        records = list(records)
        with self._atomic() as db:
            if replace_all:
                db.execute("DELETE FROM jobs WHERE agent = ?", [agent])
            db.conn.executemany(
                "INSERT OR REPLACE INTO jobs (agent, name, definition, version, source, "
                "definition_hash, created_at, updated_at, updated_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        agent,
                        r.job.name,
                        msgspec.json.encode(r.job).decode(),
                        r.version,
                        r.source,
                        r.definition_hash,
                        r.created_at,
                        r.updated_at,
                        r.updated_by,
                    )
                    for r in records
                ],
            )

    def jobs(self, *, agent: str = "", name: str = "") -> list[StoredJob]:
        """Job records, by name then agent; optionally one agent's or one name's."""
        sql = (
            "SELECT agent, definition, version, source, definition_hash, created_at, "
            "updated_at, updated_by FROM jobs WHERE (? = '' OR agent = ?) AND (? = '' OR name = ?) "
            "ORDER BY name, agent"
        )
        out = []
        for row in self._query(sql, [agent, agent, name, name]):
            job = msgspec.json.decode(row[1], type=Job)
            record = JobRecord(
                job=job,
                version=row[2],
                source=row[3],
                definition_hash=row[4] or "",
                created_at=row[5] or 0.0,
                updated_at=row[6] or 0.0,
                updated_by=row[7] or "",
            )
            out.append(StoredJob(row[0], record))
        return out

    def job_summaries(self, *, recent: int = 20) -> list[JobSummary]:
        """One row per fleet job with its last status, success rate and recent durations."""
        by_name: dict[str, list[StoredJob]] = {}
        for one in self.jobs():
            by_name.setdefault(one.record.job.name, []).append(one)
        out = []
        for name, stored in by_name.items():
            rows = self._query(
                "SELECT status, finished_at, created_at, duration_ms FROM executions "
                "WHERE job = ? ORDER BY id DESC LIMIT ?",
                [name, max(recent, 50)],
            )
            running = sum(1 for r in rows if r[0] == ExecutionStatus.RUNNING)
            finished = [r for r in rows if r[0] in _FINISHED]
            rate = (
                sum(1 for r in finished if r[0] == ExecutionStatus.SUCCESS) / len(finished)
                if finished
                else None
            )
            durations = tuple(r[3] for r in reversed(finished[:recent]) if r[3] is not None)
            first = stored[0].record
            out.append(
                JobSummary(
                    name=name,
                    agents=tuple(s.agent for s in stored),
                    job=first.job,
                    sources=tuple(sorted({s.record.source for s in stored})),
                    version=first.version,
                    is_enabled=any(s.record.job.enabled for s in stored),
                    last_status=rows[0][0] if rows else "",
                    last_at=(rows[0][1] or rows[0][2]) if rows else None,
                    success_rate=rate,
                    durations_ms=durations,
                    running=running,
                )
            )
        return out

    # -- runs ------------------------------------------------------------------

    def get_run(self, agent: str, exec_id: str) -> StoredRun | None:
        rows = self._query(
            f"SELECT {_SELECT} FROM executions WHERE agent = ? AND id = ?", [agent, exec_id]
        )
        return _to_run(rows[0]) if rows else None

    def find_runs(self, exec_id_prefix: str, limit: int = 10) -> list[StoredRun]:
        """Runs whose id starts with ``exec_id_prefix`` (for ``:logs <exec>``)."""
        rows = self._query(
            f"SELECT {_SELECT} FROM executions WHERE id >= ? AND id < ? ORDER BY id DESC LIMIT ?",
            [exec_id_prefix, exec_id_prefix + "\uffff", limit],
        )
        return [_to_run(r) for r in rows]

    def page_runs(
        self, filters: RunFilter, before_key: RunKey | None, limit: int
    ) -> list[StoredRun]:
        """Up to ``limit`` runs older than ``before_key`` (newest first): keyset paging."""
        where, params = filters.where()
        if before_key is not None:
            where += " AND (id, agent) < (?, ?)"
            params = [*params, *before_key]
        rows = self._query(
            f"SELECT {_SELECT} FROM executions WHERE {where} ORDER BY id DESC, agent DESC LIMIT ?",
            [*params, limit],
        )
        return [_to_run(r) for r in rows]

    def page_runs_after(self, filters: RunFilter, after_key: RunKey, limit: int) -> list[StoredRun]:
        """Up to ``limit`` runs newer than ``after_key``, newest first (scrolling up)."""
        where, params = filters.where()
        rows = self._query(
            f"SELECT {_SELECT} FROM executions WHERE {where} AND (id, agent) > (?, ?) "
            "ORDER BY id ASC, agent ASC LIMIT ?",
            [*params, *after_key, limit],
        )
        return [_to_run(r) for r in reversed(rows)]

    def page_runs_at(self, filters: RunFilter, offset: int, limit: int) -> list[StoredRun]:
        """Runs from position ``offset`` (newest first): for jumps, not for scrolling."""
        where, params = filters.where()
        rows = self._query(
            f"SELECT {_SELECT} FROM executions WHERE {where} "
            "ORDER BY id DESC, agent DESC LIMIT ? OFFSET ?",
            [*params, limit, max(0, offset)],
        )
        return [_to_run(r) for r in rows]

    def count_runs(self, filters: RunFilter) -> int:
        where, params = filters.where()
        return int(self._query(f"SELECT count(*) FROM executions WHERE {where}", params)[0][0])

    def estimate_runs(self) -> int:
        """All runs, at once: the highest rowid (exact unless rows were deleted)."""
        found = self._query("SELECT max(rowid) FROM executions")[0][0]
        return int(found or 0)

    def count_runs_apart(self, filters: RunFilter) -> int:
        """``count_runs`` on a connection of its own, for a worker thread.

        Counting a million rows takes ~100 ms; on its own connection (WAL lets
        readers run side by side) it never holds up the UI's page queries.
        """
        if self.path is None:
            return self.count_runs(filters)
        where, params = filters.where()
        conn = sqlite3.connect(str(self.path))
        try:
            conn.create_function("squ_match", 2, _squ_match, deterministic=True)
            return int(
                conn.execute(f"SELECT count(*) FROM executions WHERE {where}", params).fetchone()[0]
            )
        finally:
            conn.close()

    def last_run(self, job: str, agent: str = "") -> StoredRun | None:
        runs = self.page_runs(RunFilter(job=job, agent=agent), None, 1)
        return runs[0] if runs else None
