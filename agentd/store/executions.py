"""Execution rows: insert, status changes, queries and the sync feed. Sync functions, ``db`` first.

Call them through the store thread: ``await store.call(executions.apply_event,
eid, Event.START, now=now, pid=pid)``. Every change takes a new ``seq`` in the
same transaction as the change itself (DESIGN.md: state change and its sync
record are one transaction), so ``changes_since`` never misses a committed
change and never shows one that rolled back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import sqlite_utils

from agentd.alerts import store as alert_sql
from agentd.store import meta
from agentd.store.errors import InvalidField, InvalidQuery
from agentd.store.schema import next_seq
from agentd.store.writer import relaxed, solo
from shared.enums import ExecutionStatus, Trigger
from shared.errors import UnknownExecution
from shared.models import Execution
from shared.status import Event, transition

__all__ = [
    "ACTIVE",
    "UNFINISHED",
    "apply_event",
    "changes_since",
    "count_active",
    "get_execution",
    "history_floor",
    "id_floor",
    "insert_execution",
    "insert_executions",
    "last_scheduled_for",
    "prune",
    "query_executions",
    "record_start",
    "unfinished",
    "update_fields",
]

COLUMNS: tuple[str, ...] = tuple(f.name for f in msgspec.structs.fields(Execution))
_PARAMS_AT = COLUMNS.index("params")
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM executions"
_INSERT = (
    f"INSERT INTO executions ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)}) ON CONFLICT DO NOTHING"
)
# Facts fixed when the row is created; everything else may change later.
_FIXED = frozenset(
    {
        "id",
        "job",
        "server",
        "run_id",
        "trigger",
        "status",
        "seq",
        "scheduled_for",
        "created_at",
        "retry_index",
        "triggered_by",
        "params",
    }
)
MUTABLE: frozenset[str] = frozenset(COLUMNS) - _FIXED

UNFINISHED: tuple[ExecutionStatus, ...] = (
    ExecutionStatus.PENDING,
    ExecutionStatus.AWAITING_APPROVAL,
    ExecutionStatus.QUEUED,
    ExecutionStatus.RUNNING,
)
ACTIVE: tuple[ExecutionStatus, ...] = (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)
# Spelt exactly as in the executions_active partial index (schema.py), so SQLite uses it.
_UNFINISHED_SQL = "status IN ('pending', 'awaiting_approval', 'queued', 'running')"
_FINAL = tuple(s.value for s in ExecutionStatus if s.is_final)
MAX_LIMIT = 10_000
PRUNE_BATCH = 1_000
HISTORY_FLOOR_KEY = "history_floor"


class _Duplicate(Exception):
    """Raised inside the insert transaction to roll its seq back; never escapes."""


def insert_execution(db: sqlite_utils.Database, ex: Execution) -> Execution | None:
    """Record a new execution; call before spawning anything for it.

    Returns the row as stored (with its ``seq``), or ``None`` without error when
    that id, or that scheduled (job, scheduled_for) tick, is already recorded:
    the caller must then not run it. A row inserted already final (a skipped
    tick) gets ``finished_at = created_at`` if it has none, so retention sees it.
    """
    row = _insert_row(ex)
    try:
        with db.atomic():
            row["seq"] = next_seq(db)
            if db.execute(_INSERT, _insert_args(row)).rowcount == 0:
                raise _Duplicate
            stored = _from_row(row)
            # Issue 5: an alert commits in the transaction of the change that raised it.
            alert_sql.record_change(db, None, stored)
    except _Duplicate:
        return None
    return stored


def insert_executions(db: sqlite_utils.Database, exs: Iterable[Execution]) -> list[Execution]:
    """Record many new executions in one transaction (one fsync); returns those not already there.

    For the scheduler when many ticks fall due together: same rules as
    ``insert_execution``, and either all new rows commit or none do.
    """
    rows = [_insert_row(ex) for ex in exs]
    if not rows:
        return []
    inserted = []
    with db.atomic():
        # One block of seqs for the batch; a duplicate leaves a gap, which sync ignores.
        first = next_seq(db, len(rows))
        for offset, row in enumerate(rows):
            row["seq"] = first + offset
            if db.execute(_INSERT, _insert_args(row)).rowcount:
                inserted.append(_from_row(row))
                alert_sql.record_change(db, None, inserted[-1])
    return inserted


def apply_event(
    db: sqlite_utils.Database, exec_id: str, event: Event, *, now: float, **fields: Any
) -> Execution:
    """Move an execution through the status machine and set ``fields``, in one transaction.

    Raises ``UnknownExecution`` or ``IllegalTransition`` (from ``shared.status``)
    before writing anything. ``now`` fills ``started_at`` on start and
    ``finished_at`` on a final status unless given; ``duration_ms`` is derived
    from them when not given (pass the supervisor's monotonic figure if you have it).
    """
    _check_fields(fields, "apply_event")
    with db.atomic():
        current = get_execution(db, exec_id)
        status = transition(current.status, event)
        changes: dict[str, Any] = {"status": status, **fields}
        if status is ExecutionStatus.RUNNING:
            changes.setdefault("started_at", now)
        if status.is_final:
            changes.setdefault("finished_at", now)
            started = changes.get("started_at", current.started_at)
            if "duration_ms" not in changes and started is not None:
                changes["duration_ms"] = max(0, round((changes["finished_at"] - started) * 1000))
        after = _update(db, current, changes, "apply_event")
        alert_sql.record_change(db, current, after)
        return after


@relaxed
def record_start(db: sqlite_utils.Database, exec_id: str, *, now: float, pid: int) -> Execution:
    """``apply_event(START)`` once the supervisor spawned the job; commits with no own fsync.

    Why no fsync (issue 8): the queued row was made durable before the spawn; this
    change survives a crash of the agent (WAL), and only a power cut can lose it,
    after which the reboot makes the execution ``lost`` whatever the row says.
    """
    return apply_event(db, exec_id, Event.START, now=now, pid=pid)


def update_fields(db: sqlite_utils.Database, exec_id: str, **fields: Any) -> Execution:
    """Change non-status fields (pid, tails, log sizes, resource use); takes a new ``seq``.

    Raises ``UnknownExecution``; with no fields it returns the row unchanged.
    """
    _check_fields(fields, "update_fields")
    with db.atomic():
        current = get_execution(db, exec_id)
        if not fields:
            return current
        return _update(db, current, fields, "update_fields")


def get_execution(db: sqlite_utils.Database, exec_id: str) -> Execution:
    """The execution with this id; raises ``UnknownExecution``."""
    row = db.execute(f"{_SELECT} WHERE id = ?", [exec_id]).fetchone()
    if row is None:
        raise UnknownExecution(exec_id)
    return _from_tuple(row)


def query_executions(
    db: sqlite_utils.Database,
    *,
    job: str | None = None,
    status: str | Iterable[str] | None = None,
    since: float | None = None,
    until: float | None = None,
    trigger: str | Iterable[str] | None = None,
    run_id: str | None = None,
    limit: int = 50,
    before: str | None = None,
) -> list[Execution]:
    """History, newest first (by id, which sorts by time).

    ``since``/``until`` (epoch s, until exclusive) bound the time in the id: when
    the run was due (scheduled runs) or requested (all others). For the next page
    pass ``before=`` the id of the last row of this one (keyset paging: stable
    while new rows arrive). Bad filters raise ``InvalidQuery``.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery("limit", f"must be between 1 and {MAX_LIMIT} (got {limit})")
    where: list[str] = []
    args: list[Any] = []
    if job is not None:
        where.append("job = ?")
        args.append(job)
    if status is not None:
        values = _enum_values("status", status, ExecutionStatus)
        where.append(f"status IN ({', '.join('?' for _ in values)})")
        args += values
    if trigger is not None:
        values = _enum_values("trigger", trigger, Trigger)
        where.append(f"trigger IN ({', '.join('?' for _ in values)})")
        args += values
    if run_id is not None:
        where.append("run_id = ?")
        args.append(run_id)
    # Time bounds are on the id's time, the key the list is sorted by, so they are index
    # ranges (docs/store.md: "when the run was due or requested").
    if since is not None:
        where.append("id >= ?")
        args.append(id_floor(since))
    if until is not None:
        where.append("id < ?")
        args.append(id_floor(until))
    if before is not None:
        where.append("id < ?")
        args.append(before)
    sql = _SELECT
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    return _rows(db, sql, [*args, limit])


def unfinished(db: sqlite_utils.Database) -> list[Execution]:
    """Every pending, awaiting-approval, queued or running execution, oldest first.

    Call at start-up to re-adopt, queue or mark ``lost`` what the last run left.
    """
    return _rows(db, f"{_SELECT} WHERE {_UNFINISHED_SQL} ORDER BY id", [])


def changes_since(db: sqlite_utils.Database, seq: int, limit: int) -> list[Execution]:
    """Executions changed after ``seq``, ascending by ``seq``, at most ``limit``: one sync batch.

    Each row appears once, in its latest state. Continue from the last row's
    ``seq``; an empty list means the caller is up to date. Check ``history_floor``
    first: retention may have removed changes the caller never saw.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery("limit", f"must be between 1 and {MAX_LIMIT} (got {limit})")
    return _rows(db, f"{_SELECT} WHERE seq > ? ORDER BY seq LIMIT ?", [seq, limit])


def history_floor(db: sqlite_utils.Database) -> int:
    """Where this agent's history begins: every change with ``seq >= floor`` is still held.

    A console whose cursor is below ``floor - 1`` missed rows that retention has
    since removed, and records the gap. 1 when nothing was ever pruned.
    """
    return int(meta.get(db, HISTORY_FLOOR_KEY, 1))


def last_scheduled_for(db: sqlite_utils.Database, job: str) -> float | None:
    """Latest recorded tick of ``job`` (any status), or ``None``: where the scheduler resumes."""
    row = db.execute(
        "SELECT MAX(scheduled_for) FROM executions WHERE job = ? AND trigger = 'schedule'",
        [job],
    ).fetchone()
    return None if row[0] is None else float(row[0])


def count_active(db: sqlite_utils.Database, job: str) -> int:
    """How many executions of ``job`` are queued or running (for concurrency=forbid/replace)."""
    # The unfinished term, spelt as in the partial index, lets SQLite use that small index.
    row = db.execute(
        f"SELECT COUNT(*) FROM executions WHERE job = ? AND {_UNFINISHED_SQL} "
        "AND status IN ('queued', 'running')",
        [job],
    ).fetchone()
    return int(row[0])


@solo  # commits batch by batch, so it must not run inside a group transaction
def prune(db: sqlite_utils.Database, *, older_than: float) -> int:
    """Delete finished executions that finished before ``older_than``; returns how many.

    Retention: runs in batches of ``PRUNE_BATCH`` rows, each its own transaction,
    so the writer is never held long. Raises ``history_floor`` past every removed
    row. The newest scheduled row of each job is kept, so ``last_scheduled_for``
    never moves back and an old tick can never be fired again.
    """
    finals = ", ".join("?" for _ in _FINAL)
    select = (
        f"SELECT id, seq FROM executions AS e WHERE finished_at < ? AND status IN ({finals}) "
        "AND NOT (trigger = 'schedule' AND scheduled_for = (SELECT MAX(scheduled_for) "
        "FROM executions WHERE job = e.job AND trigger = 'schedule')) LIMIT ?"
    )
    total = 0
    while True:
        with db.atomic():
            found = db.execute(select, [older_than, *_FINAL, PRUNE_BATCH]).fetchall()
            if not found:
                return total
            ids = [r[0] for r in found]
            db.execute(f"DELETE FROM executions WHERE id IN ({', '.join('?' for _ in ids)})", ids)
            raise_history_floor(db, max(r[1] for r in found) + 1)
        total += len(found)


def raise_history_floor(db: sqlite_utils.Database, floor: int) -> None:
    """Record that changes below ``floor`` may be gone; the floor never moves back."""
    if floor > history_floor(db):
        meta.set(db, HISTORY_FLOOR_KEY, floor)


def id_floor(ts: float) -> str:
    """The smallest execution id (ULID) of instant ``ts``: ids of runs due at or after
    ``ts`` sort at or above it."""
    ms = min(max(int(ts * 1000), 0), (1 << 48) - 1)
    chars = []
    for _ in range(10):
        chars.append(_CROCKFORD[ms & 31])
        ms >>= 5
    return "".join(reversed(chars)) + "0" * 16


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # the ULID alphabet of shared/ids.py


# --- rows <-> records ---------------------------------------------------------------


def _insert_row(ex: Execution) -> dict[str, Any]:
    if ex.trigger is Trigger.SCHEDULE and ex.scheduled_for is None:
        raise InvalidField("scheduled_for", f"execution {ex.id}", "is required for a scheduled run")
    row = msgspec.structs.asdict(ex)
    if ex.status.is_final and ex.finished_at is None:
        row["finished_at"] = ex.created_at
    return row


def _insert_args(row: Mapping[str, Any]) -> list[Any]:
    args = [row[c] for c in COLUMNS]
    args[_PARAMS_AT] = _params_json(args[_PARAMS_AT])
    return args


def _update(
    db: sqlite_utils.Database, current: Execution, changes: Mapping[str, Any], where: str
) -> Execution:
    merged = {**msgspec.structs.asdict(current), **changes}
    try:
        new = msgspec.convert(merged, Execution)
    except msgspec.ValidationError as exc:
        raise InvalidField(
            _field_of(exc), f"{where} {current.id}", f"has a bad value: {exc}"
        ) from exc
    seq = next_seq(db)
    names = [*changes, "seq"]
    values = [_to_sql(name, getattr(new, name)) for name in changes]
    db.execute(
        f"UPDATE executions SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?",
        [*values, seq, current.id],
    )
    return msgspec.structs.replace(new, seq=seq)


def _check_fields(fields: Mapping[str, Any], where: str) -> None:
    for name in fields:
        if name not in MUTABLE:
            raise InvalidField(name, where)


def _field_of(exc: msgspec.ValidationError) -> str:
    # msgspec says "... - at `$.field`"; the field name is what the caller needs.
    text = str(exc)
    return text.rsplit("$.", 1)[-1].rstrip("`") if "$." in text else "?"


def _to_sql(name: str, value: Any) -> Any:
    return _params_json(value) if name == "params" else value


def _params_json(params: Mapping[str, str]) -> str:
    return msgspec.json.encode(params, order="sorted").decode()


def _rows(db: sqlite_utils.Database, sql: str, args: list[Any]) -> list[Execution]:
    values = db.execute(sql, args).fetchall()
    try:
        # Issue 8: two C passes (tuples -> _Row -> Execution) instead of a dict, two enum
        # calls and a keyword call per row in Python; history.since spent most of its time
        # here. ~3x faster per row.
        rows = msgspec.convert(values, list[_Row])
        return msgspec.convert(rows, list[Execution], from_attributes=True)
    except msgspec.ValidationError:
        # A value msgspec is stricter about than the old path (say a float in an INTEGER
        # column written by hand): keep answering as before rather than fail the sync.
        return [_from_tuple(r) for r in values]


# A row as SELECTed in COLUMNS order, params still JSON text: msgspec converts a tuple into
# this in C (array_like), then reads it as an Execution by attribute (``params`` is the
# property). Generated from Execution's fields so a new field cannot be missed. ``Any``:
# a type made at run time is not a type mypy can check against.
_Row: Any = msgspec.defstruct(
    "_Row",
    [
        ("params_json", str) if f.name == "params" else (f.name, f.type)
        for f in msgspec.structs.fields(Execution)
    ],
    namespace={"params": property(lambda self: _decode_params(self.params_json))},
    frozen=True,
    array_like=True,
)


def _from_tuple(values: tuple[Any, ...]) -> Execution:
    # Rows were validated on the way in; building the record directly is ~10x faster
    # than msgspec.convert, which matters for sync batches and history pages.
    row = dict(zip(COLUMNS, values, strict=True))
    row["status"] = ExecutionStatus(row["status"])
    row["trigger"] = Trigger(row["trigger"])
    row["params"] = _decode_params(row["params"])
    return Execution(**row)


def _from_row(row: dict[str, Any]) -> Execution:
    params = row["params"]
    if isinstance(params, str):
        row = {**row, "params": _decode_params(params)}
    return msgspec.convert(row, Execution)


def _decode_params(text: str) -> dict[str, str]:
    return {} if text == "{}" else msgspec.json.decode(text, type=dict[str, str])


def _enum_values(name: str, value: str | Iterable[str], enum: type[Any]) -> list[str]:
    values = [value] if isinstance(value, str) else list(value)
    allowed = [e.value for e in enum]
    for v in values:
        if v not in allowed:
            raise InvalidQuery(name, f"unknown value {v!r}; one of: {', '.join(allowed)}")
    if not values:
        raise InvalidQuery(name, "needs at least one value")
    return [str(v) for v in values]
