"""Approvals on the agent: the request table, the nonce book, and ``ApprovalDesk``.

The agent, not the console, decides (DESIGN.md). A run of a job with
``approval = manual`` (manual triggers) or ``always`` (scheduled runs too)
becomes an execution in ``awaiting_approval`` plus a request row holding the
canonical ``RunIntent``. ``approve`` runs ``shared.approvals.check_approval``
inside one store transaction with everything it needs read there (request,
job hash, nonce book), and on success marks the nonce used, the request
approved and the execution ``queued`` in that same transaction; then the
executor starts it. A refusal is audited (same transaction) and raised as
``ApprovalRefused``. Every decision appends to the audit log in the
transaction that makes it, so the log and the state never disagree.

Scheduled runs of an ``always`` job are inserted by the scheduler as
``awaiting_approval`` rows; ``ApprovalDesk.sweep`` gives each a request
(requester ``schedule``, expiring ``misfire_grace_s`` after its due time) and
turns expired requests' executions into ``skipped``. ``ApprovalDesk.run``
sweeps when woken (``wake()``: the daemon calls it on every execution change)
and at the next pending expiry, never on a fixed tick (issue 8: an idle agent
sleeps), at most once per ``SWEEP_MIN_GAP_S``; ``SWEEP_MAX_SLEEP_S`` bounds
how late a change it was not woken for (a request made through the server's
own desk) is seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlite_utils

from agentd import audit
from agentd.store import executions as ex_sql
from agentd.store import jobs as job_sql
from shared import ids
from shared.approvals import (
    ApprovalInfo,
    ApprovalRefused,
    ApprovalState,
    Approved,
    Refused,
    RunIntent,
    check_approval,
    check_withdrawal,
)
from shared.enums import Approval, Role, Trigger
from shared.enums import ExecutionStatus as S
from shared.errors import SquError
from shared.identity import Operator
from shared.jobs import parse_params
from shared.models import Execution, Job, JobRecord
from shared.status import Event

__all__ = [
    "SCHEDULE_REQUESTER",
    "ApprovalDesk",
    "UnknownApproval",
    "create_approval_tables",
    "needs_approval",
]

log = logging.getLogger(__name__)

SCHEDULE_REQUESTER = "schedule"
# The sweep's longest sleep: how late an expiry it was not told of can be applied.
SWEEP_MAX_SLEEP_S = 10.0
# Wake this much after an expiry instant (asyncio timers may fire a little early).
EXPIRY_SLACK_S = 0.01
# At most one sweep per this long, however many changes wake it (a burst of starts
# must not turn into a sweep per start): the old fixed tick, now the shortest gap.
SWEEP_MIN_GAP_S = 1.0
# How long a manual run waits for approval when nobody said (plain ``run``).
MANUAL_EXPIRY_S = 3600.0
# Request ids and nonces must not be guessable: the OS's CSPRNG.
_RNG = random.SystemRandom()


class UnknownApproval(SquError):
    code = "not_found"

    def __init__(self, request_id: str, agent: str) -> None:
        super().__init__(
            f"no approval request {request_id!r} on agent {agent}", request_id=request_id
        )


def needs_approval(job: Job, trigger: Trigger) -> bool:
    """Whether a run of ``job`` by ``trigger`` must wait for approval (retries never do)."""
    if trigger in (Trigger.MANUAL, Trigger.API):
        return job.approval in (Approval.MANUAL, Approval.ALWAYS)
    if trigger is Trigger.SCHEDULE:
        return job.approval is Approval.ALWAYS
    return False


def create_approval_tables(db: sqlite_utils.Database) -> None:
    """Create the request table and the nonce book (called by migration 0003)."""
    db.execute(
        """
        CREATE TABLE approvals (
            id TEXT PRIMARY KEY,
            execution_id TEXT NOT NULL UNIQUE,
            job TEXT NOT NULL,
            intent TEXT NOT NULL,
            definition TEXT NOT NULL,
            state TEXT NOT NULL,
            comment TEXT NOT NULL DEFAULT '',
            expires_at REAL NOT NULL,
            decided_at REAL,
            decided_by TEXT NOT NULL DEFAULT '',
            decision_comment TEXT NOT NULL DEFAULT '',
            signature TEXT NOT NULL DEFAULT '',
            seq INTEGER NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX approvals_state ON approvals (state, expires_at)")
    db.execute("CREATE INDEX approvals_job_state ON approvals (job, state, decided_at)")
    db.execute("CREATE UNIQUE INDEX approvals_seq ON approvals (seq)")
    # DESIGN.md: the agent accepts an approval once; the nonce is stored forever.
    db.execute(
        "CREATE TABLE approval_nonces (nonce TEXT PRIMARY KEY, request_id TEXT NOT NULL, "
        "used_at REAL NOT NULL)"
    )


@dataclass(frozen=True, slots=True)
class Origin:
    """Who acts and from where, for the audit log."""

    actor: str
    origin: str


# -- small sync functions for the store thread ------------------------------------------------


def _next_seq(db: sqlite_utils.Database) -> int:
    row = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM approvals").fetchone()
    return int(row[0])


def _insert_request(
    db: sqlite_utils.Database, intent: RunIntent, job: Job, comment: str, who: Origin, now: float
) -> None:
    db.execute(
        "INSERT INTO approvals (id, execution_id, job, intent, definition, state, comment, "
        "expires_at, seq) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
        [
            intent.request_id,
            intent.execution_id,
            intent.job,
            msgspec.json.encode(intent).decode(),
            msgspec.json.encode(job).decode(),
            comment,
            intent.expires_at,
            _next_seq(db),
        ],
    )
    audit.append(
        db,
        at=now,
        actor=who.actor,
        origin=who.origin,
        action="approval.requested",
        target=intent.request_id,
        after_hash=intent.definition_hash,
        detail={
            "job": intent.job,
            "execution": intent.execution_id,
            "expires_at": repr(intent.expires_at),
            "params": json.dumps(intent.params, sort_keys=True),
            "comment": comment,
        },
    )


def request_run(
    db: sqlite_utils.Database,
    ex: Execution,
    intent: RunIntent,
    job: Job,
    comment: str,
    who: Origin,
    now: float,
) -> Execution:
    """Insert the awaiting execution and its request, audited, in one transaction."""
    with db.atomic():
        stored = ex_sql.insert_execution(db, ex)
        if stored is None:  # pragma: no cover - ids are fresh ULIDs
            raise SquError(f"execution {ex.id} already exists")
        _insert_request(db, intent, job, comment, who, now)
    return stored


def request_for_awaiting(
    db: sqlite_utils.Database, make: Callable[[Execution, JobRecord | None], Any], now: float
) -> list[str]:
    """Give every ``awaiting_approval`` execution without a request one (scheduled runs).

    ``make(ex, record)`` returns ``(intent, job)`` for a request, or a reason
    string to skip the execution instead (its job is gone).
    """
    made: list[str] = []
    rows = db.execute(
        "SELECT e.id FROM executions e LEFT JOIN approvals a ON a.execution_id = e.id "
        "WHERE e.status = 'awaiting_approval' AND a.id IS NULL"
    ).fetchall()
    for (exec_id,) in rows:
        with db.atomic():
            ex = ex_sql.get_execution(db, exec_id)
            outcome = make(ex, job_sql.get_job(db, ex.job))
            if isinstance(outcome, str):
                ex_sql.apply_event(db, ex.id, Event.SKIP, now=now, reason=outcome)
                continue
            intent, job = outcome
            _insert_request(
                db, intent, job, "", Origin(actor=intent.requester, origin="agent"), now
            )
            made.append(intent.request_id)
    return made


def next_expiry(db: sqlite_utils.Database) -> float | None:
    """When the first pending request expires (None: nothing pending); uses the state index."""
    row = db.execute("SELECT MIN(expires_at) FROM approvals WHERE state = 'pending'").fetchone()
    return None if row is None or row[0] is None else float(row[0])


def get_info(db: sqlite_utils.Database, request_id: str) -> ApprovalInfo | None:
    """One request with its execution's status and the job's last approved definition."""
    row = db.execute(f"{_SELECT} WHERE a.id = ?", [request_id]).fetchone()
    return None if row is None else _info(db, row)


def list_infos(
    db: sqlite_utils.Database, state: ApprovalState | None, limit: int
) -> list[ApprovalInfo]:
    """Requests in ``state`` (None: all), newest first."""
    if state is None:
        rows = db.execute(f"{_SELECT} ORDER BY a.id DESC LIMIT ?", [limit]).fetchall()
    else:
        rows = db.execute(
            f"{_SELECT} WHERE a.state = ? ORDER BY a.id DESC LIMIT ?", [state.value, limit]
        ).fetchall()
    return [_info(db, r) for r in rows]


def changes_since(db: sqlite_utils.Database, seq: int, limit: int = 200) -> list[ApprovalInfo]:
    """Requests changed after ``seq`` in seq order: the ``approvals`` topic's feed."""
    rows = db.execute(f"{_SELECT} WHERE a.seq > ? ORDER BY a.seq LIMIT ?", [seq, limit]).fetchall()
    return [_info(db, r) for r in rows]


def latest_seq(db: sqlite_utils.Database) -> int:
    row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM approvals").fetchone()
    return int(row[0])


def approve(
    db: sqlite_utils.Database,
    intent: RunIntent,
    signature: str,
    *,
    agent: str,
    operators: Sequence[Operator],
    who: Origin,
    now: float,
) -> tuple[Approved | Refused, Execution | None]:
    """Check and, if it holds, apply an approval, audited either way, in one transaction."""
    with db.atomic():
        row = db.execute(
            "SELECT intent, state FROM approvals WHERE id = ?", [intent.request_id]
        ).fetchone()
        stored = None if row is None else msgspec.json.decode(row[0], type=RunIntent)
        state = None if row is None else _live_state(db, ApprovalState(row[1]), stored)
        record = job_sql.get_job(db, intent.job)
        used = (
            db.execute("SELECT 1 FROM approval_nonces WHERE nonce = ?", [intent.nonce]).fetchone()
            is not None
        )
        verdict = check_approval(
            intent=intent,
            signature=signature,
            stored=stored,
            state=state,
            agent=agent,
            current_hash=None if record is None else record.definition_hash,
            operators=operators,
            nonce_used=used,
            now=now,
        )
        if isinstance(verdict, Refused):
            audit.append(
                db,
                at=now,
                actor=who.actor,
                origin=who.origin,
                action="approval.refused",
                target=intent.request_id,
                before_hash=intent.definition_hash,
                after_hash="" if record is None else record.definition_hash,
                detail={"reason": verdict.reason.value, "why": verdict.message},
            )
            return verdict, None
        approver = verdict.approver.name
        db.execute(
            "INSERT INTO approval_nonces (nonce, request_id, used_at) VALUES (?, ?, ?)",
            [intent.nonce, intent.request_id, now],
        )
        _decide(db, intent.request_id, ApprovalState.APPROVED, approver, "", now, signature)
        ex = ex_sql.apply_event(
            db, intent.execution_id, Event.APPROVE, now=now, approved_by=approver
        )
        audit.append(
            db,
            at=now,
            actor=approver,
            origin=who.origin,
            action="approval.approved",
            target=intent.request_id,
            before_hash=intent.definition_hash,
            after_hash=intent.definition_hash,
            detail={"execution": intent.execution_id, "sent_by": who.actor, "nonce": intent.nonce},
        )
    return verdict, ex


def withdraw(
    db: sqlite_utils.Database,
    request_id: str,
    *,
    agent: str,
    comment: str,
    by_role: Role,
    cancelling: bool,
    who: Origin,
    now: float,
) -> tuple[Refused | None, Execution | None]:
    """Reject (``cancelling=False``) or cancel a pending request, audited either way."""
    action = "approval.cancelled" if cancelling else "approval.rejected"
    with db.atomic():
        row = db.execute(
            "SELECT intent, state FROM approvals WHERE id = ?", [request_id]
        ).fetchone()
        intent = None if row is None else msgspec.json.decode(row[0], type=RunIntent)
        refusal = check_withdrawal(
            state=None if row is None else _live_state(db, ApprovalState(row[1]), intent),
            request_id=request_id,
            agent=agent,
            requester="" if intent is None else intent.requester,
            by=who.actor,
            by_role=by_role,
            cancelling=cancelling,
        )
        if refusal is not None or intent is None:
            audit.append(
                db,
                at=now,
                actor=who.actor,
                origin=who.origin,
                action=f"{action}.refused",
                target=request_id,
                detail={"reason": refusal.reason.value if refusal else "", "comment": comment},
            )
            return refusal, None
        state = ApprovalState.CANCELLED if cancelling else ApprovalState.REJECTED
        _decide(db, request_id, state, who.actor, comment, now, "")
        verb = "cancelled" if cancelling else "rejected"
        why = f"approval {verb} by {who.actor}" + (f": {comment}" if comment else "")
        ex = ex_sql.apply_event(db, intent.execution_id, Event.CANCEL, now=now, reason=why)
        audit.append(
            db,
            at=now,
            actor=who.actor,
            origin=who.origin,
            action=action,
            target=request_id,
            before_hash=intent.definition_hash,
            detail={"execution": intent.execution_id, "comment": comment},
        )
    return None, ex


def expire_due(db: sqlite_utils.Database, now: float) -> list[Execution]:
    """Expire pending requests past their window; their executions become ``skipped``.

    Also closes requests whose execution left ``awaiting_approval`` another way
    (cancelled with ``cancel``), so the pending list never shows a dead request.
    """
    done: list[Execution] = []
    rows = db.execute(
        "SELECT a.id, a.execution_id, a.expires_at, e.status FROM approvals a "
        "JOIN executions e ON e.id = a.execution_id WHERE a.state = 'pending' "
        "AND (a.expires_at <= ? OR e.status != 'awaiting_approval')",
        [now],
    ).fetchall()
    for request_id, exec_id, expires_at, status in rows:
        with db.atomic():
            if status != S.AWAITING_APPROVAL.value:
                _decide(db, request_id, ApprovalState.CANCELLED, "agent", f"run {status}", now, "")
                continue
            _decide(db, request_id, ApprovalState.EXPIRED, "agent", "", now, "")
            ex = ex_sql.apply_event(
                db,
                exec_id,
                Event.SKIP,
                now=now,
                reason="not approved in time: the approval window passed",
            )
            audit.append(
                db,
                at=now,
                actor="agent",
                origin="agent",
                action="approval.expired",
                target=request_id,
                detail={"execution": exec_id, "expired_at": repr(expires_at)},
            )
            done.append(ex)
    return done


def _live_state(
    db: sqlite_utils.Database, state: ApprovalState, intent: RunIntent | None
) -> ApprovalState:
    """A pending request whose run was cancelled meanwhile (before the sweep saw it) is not."""
    if state is not ApprovalState.PENDING or intent is None:
        return state
    row = db.execute("SELECT status FROM executions WHERE id = ?", [intent.execution_id]).fetchone()
    if row is None or row[0] != S.AWAITING_APPROVAL.value:
        return ApprovalState.CANCELLED
    return state


def _decide(
    db: sqlite_utils.Database,
    request_id: str,
    state: ApprovalState,
    by: str,
    comment: str,
    now: float,
    signature: str,
) -> None:
    db.execute(
        "UPDATE approvals SET state = ?, decided_at = ?, decided_by = ?, decision_comment = ?, "
        "signature = ?, seq = ? WHERE id = ?",
        [state.value, now, by, comment, signature, _next_seq(db), request_id],
    )


_SELECT = (
    "SELECT a.intent, a.state, a.comment, a.decided_at, a.decided_by, a.decision_comment, "
    "a.definition, a.seq, a.job, a.id, COALESCE(e.status, '') FROM approvals a "
    "LEFT JOIN executions e ON e.id = a.execution_id"
)


def _info(db: sqlite_utils.Database, row: tuple[Any, ...]) -> ApprovalInfo:
    last = db.execute(
        "SELECT definition FROM approvals WHERE job = ? AND state = 'approved' AND id != ? "
        "ORDER BY decided_at DESC LIMIT 1",
        [row[8], row[9]],
    ).fetchone()
    return ApprovalInfo(
        intent=msgspec.json.decode(row[0], type=RunIntent),
        state=ApprovalState(row[1]),
        comment=row[2],
        decided_at=row[3],
        decided_by=row[4],
        decision_comment=row[5],
        definition=msgspec.json.decode(row[6], type=Job),
        last_approved=None if last is None else msgspec.json.decode(last[0], type=Job),
        execution_status=row[10],
        seq=row[7],
    )


# -- the async service -------------------------------------------------------------------------


class ApprovalDesk:
    """The agent's approvals: requests, decisions, expiry. One per agent, beside StoreOps.

    ``operators()`` returns the current authorized_operators (re-read by the
    caller as the file changes); ``start(ex)``, if given, starts an approved
    execution (the executor's ``start``); without it the row stays ``queued``.
    """

    def __init__(
        self,
        store: Any,
        *,
        agent_name: str,
        operators: Callable[[], Sequence[Operator]],
        start: Callable[[Execution], Any] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.agent_name = agent_name
        self.operators = operators
        self.start = start
        self.wall = wall
        # Called after this desk changed requests (the daemon wakes its sweep, the feeds
        # and the alert dispatcher; the server's desk is a second instance).
        self.on_change: Callable[[], None] = lambda: None
        self._wake = asyncio.Event()

    async def request(
        self,
        record: JobRecord,
        *,
        params: dict[str, str],
        requester: str,
        origin: str,
        expires_in_s: float,
        comment: str = "",
    ) -> ApprovalInfo:
        """Record a manual run of ``record`` awaiting approval; returns the request to sign."""
        now = self.wall()
        resolved = parse_params(record.job, params)  # a bad override is refused at once
        exec_id = ids.new_execution_id(now=now, rng=_RNG)
        ex = Execution(
            id=exec_id,
            job=record.job.name,
            server=self.agent_name,
            run_id=exec_id,
            trigger=Trigger.MANUAL,
            status=S.AWAITING_APPROVAL,
            created_at=now,
            triggered_by=requester,
            params={k: str(v) for k, v in resolved.items()},
        )
        intent = self._intent(
            record, ex, requester=requester, now=now, expires_at=now + expires_in_s
        )
        who = Origin(actor=requester, origin=origin)
        await self.store.call(request_run, ex, intent, record.job, comment, who, now)
        self.on_change()  # a new expiry for the sweep, a new request for the feeds
        return await self.get(intent.request_id)

    async def get(self, request_id: str) -> ApprovalInfo:
        info = await self.store.call(get_info, request_id)
        if info is None:
            raise UnknownApproval(request_id, self.agent_name)
        return info

    async def list(self, state: ApprovalState | None, limit: int) -> list[ApprovalInfo]:
        result: list[ApprovalInfo] = await self.store.call(list_infos, state, limit)
        return result

    async def approve(
        self, intent: RunIntent, signature: str, *, by: str, origin: str
    ) -> ApprovalInfo:
        """Decide an approval; on success the execution is queued and started."""
        verdict, ex = await self.store.call(
            approve,
            intent,
            signature,
            agent=self.agent_name,
            operators=list(self.operators()),
            who=Origin(actor=by, origin=origin),
            now=self.wall(),
        )
        if isinstance(verdict, Refused):
            log.warning("approval %s from %s refused: %s", intent.request_id, by, verdict.message)
            raise ApprovalRefused(verdict, intent.request_id)
        self.on_change()
        if self.start is not None and ex is not None:
            await self.start(ex)
        return await self.get(intent.request_id)

    async def withdraw(
        self, request_id: str, *, by: str, role: Role, comment: str, cancelling: bool, origin: str
    ) -> ApprovalInfo:
        """Reject or cancel a pending request; its execution becomes ``cancelled``."""
        refusal, _ = await self.store.call(
            withdraw,
            request_id,
            agent=self.agent_name,
            comment=comment,
            by_role=role,
            cancelling=cancelling,
            who=Origin(actor=by, origin=origin),
            now=self.wall(),
        )
        if refusal is not None:
            raise ApprovalRefused(refusal, request_id)
        self.on_change()
        return await self.get(request_id)

    async def sweep(self) -> None:
        """Give scheduled awaiting runs their requests; expire requests past their window."""
        now = self.wall()
        made = await self.store.call(request_for_awaiting, self._scheduled_request, now)
        expired = await self.store.call(expire_due, now)
        if made or expired:
            self.on_change()

    def wake(self) -> None:
        """Sweep now: an execution changed (maybe a new ``awaiting_approval`` row)."""
        self._wake.set()

    async def run(self) -> None:
        """Sweep when woken and at each expiry until cancelled (the daemon's TaskGroup owns it)."""
        while True:
            # Cleared before the sweep: a wake() during it means sweep again soon.
            self._wake.clear()
            swept_at = time.monotonic()
            delay_s = SWEEP_MAX_SLEEP_S
            try:
                await self.sweep()
                expires_at = await self.store.call(next_expiry)
                if expires_at is not None:
                    until_s = max(0.0, expires_at - self.wall()) + EXPIRY_SLACK_S
                    delay_s = min(delay_s, until_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("approvals sweep failed; carrying on")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay_s)
            await asyncio.sleep(max(0.0, swept_at + SWEEP_MIN_GAP_S - time.monotonic()))

    def _scheduled_request(
        self, ex: Execution, record: JobRecord | None
    ) -> tuple[RunIntent, Job] | str:
        if record is None:
            return f"job {ex.job!r} no longer exists on this agent"
        if ex.trigger is Trigger.SCHEDULE:
            due = ex.scheduled_for if ex.scheduled_for is not None else ex.created_at
            # The approval window of a scheduled run is its misfire grace: past it, the tick
            # would not have been fired late either (DESIGN.md: expired approval -> skipped).
            requester, expires_at = SCHEDULE_REQUESTER, due + record.job.misfire_grace_s
        else:
            # A manual run recorded without a request (the local control socket): the one
            # who triggered it is the requester, and it waits as a wire ``run`` would.
            requester = ex.triggered_by or "local"
            expires_at = ex.created_at + MANUAL_EXPIRY_S
        intent = self._intent(
            record, ex, requester=requester, now=self.wall(), expires_at=expires_at
        )
        return intent, record.job

    def _intent(
        self, record: JobRecord, ex: Execution, *, requester: str, now: float, expires_at: float
    ) -> RunIntent:
        return RunIntent(
            request_id=ids.new_execution_id(now=now, rng=_RNG),
            agent=self.agent_name,
            job=record.job.name,
            definition_hash=record.definition_hash,
            execution_id=ex.id,
            params=dict(ex.params),
            requester=requester,
            requested_at=now,
            expires_at=expires_at,
            nonce=secrets.token_hex(16),
        )
