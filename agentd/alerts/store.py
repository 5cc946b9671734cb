"""Alert rows: recorded with the change that caused them, routed, delivered, acknowledged.

Sync functions taking the ``sqlite_utils.Database`` first, called through the
store thread (``await store.call(alert_sql.list_alerts, ...)``), like
``agentd.store.executions``. ``record_change`` is called *by* the executions
module inside its own transaction, so an alert commits or rolls back with the
state change that raised it (issue 5: "in the same transaction"). Every change
to an alert (new, routed, delivered, acknowledged) takes a new ``seq`` from
the store's one counter: ``changes_since`` is the alerts sync feed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
import sqlite_utils

from agentd.store.errors import InvalidQuery
from agentd.store.schema import next_seq
from shared import alerts as rules
from shared.alerts import Alert, Delivery, Pending
from shared.enums import AlertKind, ExecutionStatus
from shared.errors import NotFound
from shared.models import Execution, Job

__all__ = [
    "UnknownAlert",
    "ack",
    "changes_since",
    "due_deliveries",
    "get_alert",
    "insert_alert",
    "latest_alert_seq",
    "list_alerts",
    "list_alerts_by_id",
    "long_running_candidates",
    "prune_alerts",
    "record_change",
    "record_outcome",
    "route",
    "sent_counts",
    "unacked_count",
    "unrouted",
]

_COLUMNS = (
    "id kind job server execution_id run_id status created_at seq attempt attempts exit_code "
    "signal duration_ms scheduled_for reason acked_at acked_by"
).split()
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM alerts"
_INSERT = (
    f"INSERT INTO alerts ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
    "ON CONFLICT DO NOTHING"
)
MAX_LIMIT = 10_000
# Recent successful runs whose median makes a job's "usual" duration.
MEDIAN_WINDOW = 20


class UnknownAlert(NotFound):
    """An alert id this agent does not hold (wire code ``not_found``)."""

    def __init__(self, alert_id: str) -> None:
        super().__init__(f"no alert {alert_id!r}", alert=alert_id)


# --------------------------------------------------------------------------- recording


def record_change(db: sqlite_utils.Database, before: Execution | None, after: Execution) -> None:
    """Record the alerts ``before -> after`` raises; call inside the change's transaction.

    Keeps the job's failing flag (for ``recovered``). Cheap for the common case:
    a change that keeps the status returns at once; a success of a job that
    was not failing costs one indexed read.
    """
    if before is not None and before.status is after.status:
        return
    if not after.status.is_final:
        return
    row = db.execute("SELECT failing FROM alert_job_state WHERE job = ?", [after.job]).fetchone()
    was_failing = bool(row and row[0])
    failing = rules.is_failing_after(after.status, was_failing)
    if failing != was_failing:
        db.execute(
            "INSERT INTO alert_job_state (job, failing) VALUES (?, ?) "
            "ON CONFLICT (job) DO UPDATE SET failing = excluded.failing",
            [after.job, int(failing)],
        )
    if after.status is ExecutionStatus.SUCCESS and not was_failing:
        return
    job = _job(db, after.job)
    now = after.finished_at if after.finished_at is not None else after.created_at
    for kind in rules.alerts_for(before, after, job=job, was_failing=was_failing):
        insert_alert(db, rules.alert_from_execution(after, kind, job=job, now=now))


def insert_alert(db: sqlite_utils.Database, alert: Alert) -> Alert | None:
    """Store ``alert`` with a new seq; None (no error) if that alert id already exists."""
    with db.atomic():
        seq = next_seq(db)
        values = msgspec.structs.asdict(msgspec.structs.replace(alert, seq=seq))
        args = [_to_sql(values[c]) for c in _COLUMNS]
        if db.execute(_INSERT, args).rowcount == 0:
            return None
    return msgspec.structs.replace(alert, seq=seq)


def _job(db: sqlite_utils.Database, name: str) -> Job | None:
    row = db.execute(
        "SELECT definition FROM jobs WHERE name = ? AND deleted_at IS NULL", [name]
    ).fetchone()
    if row is None:
        return None
    try:
        return msgspec.json.decode(row[0], type=Job)
    except msgspec.DecodeError:
        return None  # a definition this build cannot read: alert without its retry count


def long_running_candidates(
    db: sqlite_utils.Database,
) -> list[tuple[Execution, list[int]]]:
    """Running executions without a long-running alert yet, each with its job's recent
    successful durations (ms, newest first): what the long-running check weighs."""
    from agentd.store import executions as ex_sql  # executions imports this module

    out = []
    for ex in ex_sql.query_executions(db, status="running", limit=MAX_LIMIT):
        if ex.started_at is None:
            continue
        if get_alert_or_none(db, rules.alert_id(ex.id, AlertKind.LONG_RUNNING)) is not None:
            continue
        durations = [
            int(r[0])
            for r in db.execute(
                "SELECT duration_ms FROM executions WHERE job = ? AND status = 'success' "
                "AND duration_ms IS NOT NULL ORDER BY id DESC LIMIT ?",
                [ex.job, MEDIAN_WINDOW],
            )
        ]
        out.append((ex, durations))
    return out


# --------------------------------------------------------------------------- delivery


def unrouted(db: sqlite_utils.Database, limit: int = 500) -> list[Alert]:
    """Alerts not yet given their delivery rows, oldest first."""
    return _alerts(db, f"{_SELECT} WHERE routed = 0 ORDER BY seq LIMIT ?", [limit])


def route(
    db: sqlite_utils.Database, plan: Sequence[tuple[Alert, Sequence[str]]], *, now: float
) -> None:
    """Give each alert one pending delivery per channel (none: notify nobody); mark it routed."""
    with db.atomic():
        for alert, channels in plan:
            for channel in channels:
                db.execute(
                    "INSERT INTO alert_deliveries (alert_id, channel, job, state, next_attempt_at) "
                    "VALUES (?, ?, ?, 'pending', ?) ON CONFLICT DO NOTHING",
                    [alert.id, channel, alert.job, now],
                )
            _touch(db, [alert.id], "routed = 1")


def due_deliveries(db: sqlite_utils.Database, *, now: float, limit: int = 500) -> list[Pending]:
    """Pending deliveries whose next attempt is due, with their alerts."""
    rows = db.execute(
        "SELECT id, alert_id, channel FROM alert_deliveries "
        "WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
        [now, limit],
    ).fetchall()
    found = {a.id: a for a in _by_ids(db, {r[1] for r in rows})}
    return [Pending(delivery_id=r[0], channel=r[2], alert=found[r[1]]) for r in rows]


def next_attempt_at(db: sqlite_utils.Database) -> float | None:
    """When the first pending delivery is due (None: nothing pending); uses the due index."""
    row = db.execute(
        "SELECT MIN(next_attempt_at) FROM alert_deliveries WHERE state = 'pending'"
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def sent_counts(db: sqlite_utils.Database, *, since: float) -> dict[tuple[str, str], int]:
    """Messages sent per (channel, job) since ``since``: what the rate limit counts."""
    rows = db.execute(
        "SELECT channel, job, COUNT(DISTINCT message_id) FROM alert_deliveries "
        "WHERE sent_at >= ? GROUP BY channel, job",
        [since],
    )
    return {(r[0], r[1]): int(r[2]) for r in rows}


def record_outcome(
    db: sqlite_utils.Database,
    delivery_ids: Sequence[int],
    *,
    now: float,
    message_id: str,
    error: str = "",
    next_attempt_at: float | None = None,
    state: str | None = None,
) -> None:
    """Record one send of ``delivery_ids``: sent (no ``error``), retry at ``next_attempt_at``,
    or given up (``state='failed'``, or ``'dropped'`` for a channel no longer configured)."""
    if not delivery_ids:
        return
    marks = ", ".join("?" for _ in delivery_ids)
    with db.atomic():
        if not error:
            db.execute(
                f"UPDATE alert_deliveries SET state = 'sent', attempts = attempts + 1, "
                f"sent_at = ?, message_id = ?, last_error = '' WHERE id IN ({marks})",
                [now, message_id, *delivery_ids],
            )
        else:
            db.execute(
                f"UPDATE alert_deliveries SET state = ?, attempts = attempts + 1, "
                f"last_error = ?, next_attempt_at = ? WHERE id IN ({marks})",
                [
                    state or "pending",
                    error[:500],
                    next_attempt_at if next_attempt_at is not None else now,
                    *delivery_ids,
                ],
            )
        ids = [
            r[0]
            for r in db.execute(
                f"SELECT DISTINCT alert_id FROM alert_deliveries WHERE id IN ({marks})",
                list(delivery_ids),
            )
        ]
        _touch(db, ids)


def delivery_attempts(db: sqlite_utils.Database, delivery_ids: Sequence[int]) -> int:
    """The most attempts any of these deliveries has had (for the backoff of the next one)."""
    if not delivery_ids:
        return 0
    marks = ", ".join("?" for _ in delivery_ids)
    row = db.execute(
        f"SELECT MAX(attempts) FROM alert_deliveries WHERE id IN ({marks})", list(delivery_ids)
    ).fetchone()
    return int(row[0] or 0)


# --------------------------------------------------------------------------- reading, ack


def get_alert(db: sqlite_utils.Database, alert_id: str) -> Alert:
    """The alert with this id (with its deliveries); raises ``UnknownAlert``."""
    found = get_alert_or_none(db, alert_id)
    if found is None:
        raise UnknownAlert(alert_id)
    return found


def get_alert_or_none(db: sqlite_utils.Database, alert_id: str) -> Alert | None:
    rows = _by_ids(db, {alert_id})
    return rows[0] if rows else None


def list_alerts_by_id(db: sqlite_utils.Database, alert_ids: Iterable[str]) -> list[Alert]:
    """The alerts among ``alert_ids`` that exist (any order)."""
    return _by_ids(db, set(alert_ids))


def list_alerts(
    db: sqlite_utils.Database,
    *,
    job: str | None = None,
    unacked: bool = False,
    kind: str | None = None,
    limit: int = 100,
    before_seq: int | None = None,
) -> list[Alert]:
    """Alerts newest first (by seq: latest change first), filtered; keyset paging by seq."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery("limit", f"must be between 1 and {MAX_LIMIT} (got {limit})")
    where: list[str] = []
    args: list[Any] = []
    if job is not None:
        where.append("job = ?")
        args.append(job)
    if unacked:
        where.append("acked_at IS NULL")
    if kind is not None:
        if kind not in {k.value for k in AlertKind}:
            known = ", ".join(k.value for k in AlertKind)
            raise InvalidQuery("kind", f"unknown alert kind {kind!r}; one of: {known}")
        where.append("kind = ?")
        args.append(kind)
    if before_seq is not None:
        where.append("seq < ?")
        args.append(before_seq)
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
    return _alerts(db, f"{sql} ORDER BY seq DESC LIMIT ?", [*args, limit])


def unacked_count(db: sqlite_utils.Database) -> int:
    """How many alerts nobody has acknowledged yet (the console's header count)."""
    return int(db.execute("SELECT COUNT(*) FROM alerts WHERE acked_at IS NULL").fetchone()[0])


def ack(db: sqlite_utils.Database, alert_ids: Iterable[str], *, by: str, now: float) -> list[Alert]:
    """Acknowledge alerts (idempotent: an acknowledged one keeps its first ack); returns them.

    Raises ``UnknownAlert`` for an id that does not exist, before changing anything.
    """
    ids = list(dict.fromkeys(alert_ids))
    with db.atomic():
        found = {a.id for a in _by_ids(db, set(ids))}
        for alert_id in ids:
            if alert_id not in found:
                raise UnknownAlert(alert_id)
        fresh = [
            r[0]
            for r in db.execute(
                f"SELECT id FROM alerts WHERE acked_at IS NULL AND id IN "
                f"({', '.join('?' for _ in ids)})",
                ids,
            )
        ]
        _touch(db, fresh, "acked_at = ?, acked_by = ?", [now, by])
    return _by_ids(db, set(ids))


def changes_since(db: sqlite_utils.Database, seq: int, limit: int) -> list[Alert]:
    """Alerts changed after ``seq``, ascending by seq, each once in its latest state: one
    sync batch. Continue from the last row's seq; empty means up to date."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery("limit", f"must be between 1 and {MAX_LIMIT} (got {limit})")
    return _alerts(db, f"{_SELECT} WHERE seq > ? ORDER BY seq LIMIT ?", [seq, limit])


def latest_alert_seq(db: sqlite_utils.Database) -> int:
    """The highest seq of any alert (0 if none): where a live feed starts."""
    return int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM alerts").fetchone()[0])


def prune_alerts(db: sqlite_utils.Database, *, older_than: float) -> int:
    """Delete alerts created before ``older_than`` with no delivery pending; returns how many."""
    with db.atomic():
        cur = db.execute(
            "DELETE FROM alerts WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM "
            "alert_deliveries d WHERE d.alert_id = alerts.id AND d.state = 'pending')",
            [older_than],
        )
    return int(cur.rowcount)


# --------------------------------------------------------------------------- rows


def _touch(
    db: sqlite_utils.Database, ids: Sequence[str], sets: str = "", args: Sequence[Any] = ()
) -> None:
    """Give each alert a new seq (and apply ``sets``), so the change syncs."""
    for alert_id in ids:
        extra = f", {sets}" if sets else ""
        db.execute(
            f"UPDATE alerts SET seq = ?{extra} WHERE id = ?", [next_seq(db), *args, alert_id]
        )


def _by_ids(db: sqlite_utils.Database, ids: set[str]) -> list[Alert]:
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    return _alerts(db, f"{_SELECT} WHERE id IN ({marks}) ORDER BY seq", list(ids))


def _alerts(db: sqlite_utils.Database, sql: str, args: list[Any]) -> list[Alert]:
    rows = [dict(zip(_COLUMNS, r, strict=True)) for r in db.execute(sql, args)]
    if not rows:
        return []
    deliveries = _deliveries(db, [r["id"] for r in rows])
    out = []
    for row in rows:
        row["kind"] = AlertKind(row["kind"])
        row["status"] = ExecutionStatus(row["status"])
        out.append(Alert(**row, deliveries=tuple(deliveries.get(row["id"], ()))))
    return out


def _deliveries(db: sqlite_utils.Database, ids: list[str]) -> Mapping[str, list[Delivery]]:
    out: dict[str, list[Delivery]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for r in db.execute(
            "SELECT alert_id, channel, state, attempts, last_error, sent_at, next_attempt_at "
            f"FROM alert_deliveries WHERE alert_id IN ({', '.join('?' for _ in chunk)}) "
            "ORDER BY id",
            chunk,
        ):
            pending = r[2] == "pending"
            out.setdefault(r[0], []).append(
                Delivery(
                    channel=r[1],
                    state=r[2],
                    attempts=r[3],
                    last_error=r[4],
                    sent_at=r[5],
                    next_attempt_at=r[6] if pending else None,
                )
            )
    return out


def _to_sql(value: Any) -> Any:
    if isinstance(value, AlertKind | ExecutionStatus):
        return value.value
    return value
