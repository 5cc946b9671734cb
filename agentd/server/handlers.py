"""One async function per protocol method, in one registry; and ``AgentOps``, what they call.

The session has already checked the caller's role and decoded the params into
the method's type (shared/protocol), so a handler only does the work: call
the agent and build the result. A ``SquError`` a handler raises goes back as an
error reply with its code; anything else becomes ``internal`` (the session logs
it). ``AgentOps`` is the seam to the daemon: ``agentd.server.ops_store.StoreOps``
implements it over the store, and the daemon can pass that or its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.alerts import Alert as AlertRecord
from shared.alerts import AlertAck, AlertsBatch, AlertsQuery, AlertsResult, AlertsSince
from shared.approvals import (
    ApprovalId,
    ApprovalInfo,
    ApprovalRequest,
    ApprovalSign,
    ApprovalsQuery,
    ApprovalsResult,
    ApprovalState,
    ApprovalWithdraw,
    RunIntent,
)
from shared.audit import AuditBatch, AuditSince, ChainReport
from shared.enums import ExecutionStatus, Role
from shared.errors import SquError
from shared.models import Execution, Job, JobRecord
from shared.protocol import (
    METHODS,
    TOPICS,
    AgentInfo,
    DeleteJob,
    Empty,
    ExecutionId,
    ExecutionsQuery,
    ExecutionsResult,
    Heartbeat,
    HistoryBatch,
    HistorySince,
    JobChanged,
    JobName,
    JobsResult,
    Limits,
    LogSlice,
    LogsRead,
    PutJob,
    RunParams,
    RunResult,
    Script,
    ScriptInfo,
    ScriptPut,
    ScriptRef,
    ScriptsResult,
    Subscribe,
    make_batch,
)

__all__ = ["HANDLERS", "AgentOps", "CallContext", "InvalidSubscription"]


class AgentOps(Protocol):
    """What the WebSocket server needs from the agent. All methods are async and may raise
    ``SquError`` (sent to the client as is); ``by`` is the authenticated operator's name."""

    agent_name: str
    agent_version: str

    async def agent_info(self) -> AgentInfo: ...
    async def list_jobs(self) -> list[JobRecord]: ...
    async def get_job(self, name: str) -> JobRecord: ...
    async def put_job(self, job: Job, expected_version: int | None, by: str) -> JobRecord: ...
    async def delete_job(self, name: str, expected_version: int | None, by: str) -> None: ...
    async def set_enabled(self, name: str, enabled: bool, by: str) -> JobRecord: ...
    async def run(self, job: str, params: dict[str, str], target: str | None, by: str) -> str: ...
    async def cancel(self, exec_id: str, by: str) -> None: ...
    async def get_execution(self, exec_id: str) -> Execution: ...
    async def query_executions(
        self,
        *,
        job: str | None,
        status: list[ExecutionStatus] | None,
        run_id: str | None,
        since: float | None,
        until: float | None,
        limit: int,
    ) -> list[Execution]: ...
    async def history_since(self, seq: int, limit: int) -> tuple[str, int, list[Execution]]:
        """(epoch, floor_seq, up to ``limit`` executions with seq > ``seq`` in seq order)."""
        ...

    async def job_changes_since(self, seq: int) -> list[tuple[int, JobChanged]]:
        """(seq, change) for every job change after ``seq``, in seq order: the ``jobs`` topic."""
        ...

    async def read_log(
        self, exec_id: str, stream: str | None, offset: int, limit: int, skip: int = 0
    ) -> LogSlice: ...
    async def latest_seq(self) -> int:
        """The newest seq (jobs and executions share the counter): where the feeds start."""
        ...

    async def heartbeat(self) -> Heartbeat: ...
    async def put_script(
        self, name: str, content: str, interpreter: str, by: str
    ) -> ScriptInfo: ...
    async def list_scripts(self) -> list[ScriptInfo]: ...
    async def get_script(self, ref: str) -> Script: ...

    # -- approvals and audit (agentd/server/approval_ops.py, docs/approvals.md) --
    async def request_approval(
        self,
        record: JobRecord,
        *,
        params: dict[str, str],
        expires_in_s: float,
        comment: str,
        by: str,
        origin: str,
    ) -> ApprovalInfo: ...
    async def get_approval(self, request_id: str) -> ApprovalInfo: ...
    async def list_approvals(
        self, state: ApprovalState | None, limit: int
    ) -> list[ApprovalInfo]: ...
    async def approve(
        self, intent: RunIntent, signature: str, *, by: str, origin: str
    ) -> ApprovalInfo: ...
    async def withdraw_approval(
        self, request_id: str, *, by: str, role: Role, comment: str, cancelling: bool, origin: str
    ) -> ApprovalInfo: ...
    async def approval_changes_since(self, seq: int) -> list[ApprovalInfo]: ...
    async def latest_approval_seq(self) -> int: ...
    async def audit_since(
        self,
        seq: int,
        limit: int,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
    ) -> AuditBatch: ...
    async def audit_verify(self) -> ChainReport: ...

    # -- alerts (agentd/server/alert_ops.py, docs/alerts.md) --
    async def list_alerts(self, query: AlertsQuery) -> AlertsResult: ...
    async def ack_alerts(self, ids: list[str], *, by: str, origin: str) -> AlertsResult: ...
    async def alerts_since(self, seq: int, limit: int) -> AlertsBatch: ...
    async def alert_changes_since(self, seq: int) -> list[AlertRecord]: ...
    async def latest_alert_seq(self) -> int: ...


class InvalidSubscription(SquError):
    code = "invalid_params"

    def __init__(self, why: str) -> None:
        super().__init__(why)


async def _nothing_to_start(topic: str) -> None:
    """``CallContext.topic_subscribed`` outside a server (tests of handlers alone)."""


@dataclass(slots=True)
class CallContext:
    """Who is calling, on which connection; handlers read it, subscribe edits ``topics``."""

    operator: str
    role: Role
    limits: Limits
    peer: str = ""  # "host:port" of the connection, for the audit log's "from where"
    # topic -> execution ids (for ``logs``) or {""} for whole topics
    topics: dict[str, set[str]] = field(default_factory=dict)
    # execution id -> (offset, skip) of the next log byte to push (log followers advance it)
    log_offsets: dict[str, tuple[int, int]] = field(default_factory=dict)
    # called after a logs subscription is added, so an idle session's follower can sleep
    logs_subscribed: Callable[[], None] = lambda: None
    # awaited after any other subscription is added, before the reply: the server's feed
    # for that topic sleeps while nobody listens and starts here (issue 8)
    topic_subscribed: Callable[[str], Awaitable[None]] = field(default=_nothing_to_start)


Handler = Callable[[AgentOps, Any, CallContext], Awaitable[Any]]
HANDLERS: dict[str, Handler] = {}


def handles(method: str) -> Callable[[Handler], Handler]:
    if method not in METHODS:
        raise KeyError(f"{method!r} is not in the protocol's METHODS")

    def register(fn: Handler) -> Handler:
        HANDLERS[method] = fn
        return fn

    return register


@handles("agent.info")
async def agent_info(ops: AgentOps, params: Empty, ctx: CallContext) -> AgentInfo:
    return await ops.agent_info()


@handles("jobs.list")
async def jobs_list(ops: AgentOps, params: Empty, ctx: CallContext) -> JobsResult:
    return JobsResult(jobs=await ops.list_jobs())


@handles("jobs.get")
async def jobs_get(ops: AgentOps, params: JobName, ctx: CallContext) -> JobRecord:
    return await ops.get_job(params.name)


@handles("jobs.put")
async def jobs_put(ops: AgentOps, params: PutJob, ctx: CallContext) -> JobRecord:
    return await ops.put_job(params.job, params.expected_version, ctx.operator)


@handles("jobs.delete")
async def jobs_delete(ops: AgentOps, params: DeleteJob, ctx: CallContext) -> Empty:
    await ops.delete_job(params.name, params.expected_version, ctx.operator)
    return Empty()


@handles("jobs.enable")
async def jobs_enable(ops: AgentOps, params: JobName, ctx: CallContext) -> JobRecord:
    return await ops.set_enabled(params.name, True, ctx.operator)


@handles("jobs.disable")
async def jobs_disable(ops: AgentOps, params: JobName, ctx: CallContext) -> JobRecord:
    return await ops.set_enabled(params.name, False, ctx.operator)


@handles("run")
async def run(ops: AgentOps, params: RunParams, ctx: CallContext) -> RunResult:
    exec_id = await ops.run(params.job, dict(params.params), params.target, ctx.operator)
    return RunResult(execution_id=exec_id)


@handles("cancel")
async def cancel(ops: AgentOps, params: ExecutionId, ctx: CallContext) -> Empty:
    await ops.cancel(params.execution_id, ctx.operator)
    return Empty()


@handles("executions.get")
async def executions_get(ops: AgentOps, params: ExecutionId, ctx: CallContext) -> Execution:
    return await ops.get_execution(params.execution_id)


@handles("executions.query")
async def executions_query(
    ops: AgentOps, params: ExecutionsQuery, ctx: CallContext
) -> ExecutionsResult:
    rows = await ops.query_executions(
        job=params.job,
        status=params.status,
        run_id=params.run_id,
        since=params.since,
        until=params.until,
        limit=min(params.limit, ctx.limits.max_batch),
    )
    return ExecutionsResult(executions=rows)


@handles("history.since")
async def history_since(ops: AgentOps, params: HistorySince, ctx: CallContext) -> HistoryBatch:
    limit = min(params.limit, ctx.limits.max_batch)
    # One extra row tells make_batch whether there is more.
    epoch, floor_seq, rows = await ops.history_since(params.seq, limit + 1)
    return make_batch(
        epoch=epoch,
        floor_seq=floor_seq,
        since_seq=params.seq,
        rows=rows,
        limit=limit,
        max_bytes=ctx.limits.max_frame_bytes,
    )


@handles("logs.read")
async def logs_read(ops: AgentOps, params: LogsRead, ctx: CallContext) -> LogSlice:
    limit = min(params.limit, ctx.limits.max_log_chunk_bytes)
    return await ops.read_log(params.execution_id, params.stream, params.offset, limit, params.skip)


@handles("subscribe")
async def subscribe(ops: AgentOps, params: Subscribe, ctx: CallContext) -> Empty:
    _check_topic(params)
    if params.topic == "logs":
        if len(ctx.topics.get("logs", ())) >= MAX_LOG_SUBSCRIPTIONS:
            raise InvalidSubscription(
                f"already following {MAX_LOG_SUBSCRIPTIONS} logs on this connection"
            )
        # Fail now (unknown_execution) rather than push nothing forever.
        await ops.get_execution(params.execution_id or "")
        ctx.log_offsets[params.execution_id or ""] = (params.offset, 0)
        ctx.topics.setdefault("logs", set()).add(params.execution_id or "")
        ctx.logs_subscribed()
        return Empty()
    ctx.topics.setdefault(params.topic, set()).add(params.execution_id or "")
    await ctx.topic_subscribed(params.topic)
    return Empty()


@handles("unsubscribe")
async def unsubscribe(ops: AgentOps, params: Subscribe, ctx: CallContext) -> Empty:
    _check_topic(params)
    keys = ctx.topics.get(params.topic, set())
    keys.discard(params.execution_id or "")
    if params.topic == "logs":
        ctx.log_offsets.pop(params.execution_id or "", None)
    if not keys:
        ctx.topics.pop(params.topic, None)
    return Empty()


# A client may follow this many running executions' logs at once on one connection.
MAX_LOG_SUBSCRIPTIONS = 16


def _check_topic(params: Subscribe) -> None:
    if params.topic not in TOPICS:
        raise InvalidSubscription(
            f"no topic {params.topic!r}; topics are {', '.join(sorted(TOPICS))}"
        )
    if params.topic == "logs" and not params.execution_id:
        raise InvalidSubscription("the logs topic needs an execution_id")
    if params.topic != "logs" and params.execution_id:
        raise InvalidSubscription(f"the {params.topic} topic takes no execution_id")


@handles("scripts.put")
async def scripts_put(ops: AgentOps, params: ScriptPut, ctx: CallContext) -> ScriptInfo:
    return await ops.put_script(params.name, params.content, params.interpreter, ctx.operator)


@handles("scripts.list")
async def scripts_list(ops: AgentOps, params: Empty, ctx: CallContext) -> ScriptsResult:
    return ScriptsResult(scripts=await ops.list_scripts())


@handles("scripts.get")
async def scripts_get(ops: AgentOps, params: ScriptRef, ctx: CallContext) -> Script:
    return await ops.get_script(params.ref)


# -- approvals and audit ---------------------------------------------------------------------


def _origin(ctx: CallContext) -> str:
    return f"wire {ctx.peer}" if ctx.peer else "wire"


@handles("approvals.request")
async def approvals_request(
    ops: AgentOps, params: ApprovalRequest, ctx: CallContext
) -> ApprovalInfo:
    if params.target is not None and params.target != ops.agent_name:
        # The same refusal as ``run`` (imported here: ops_store imports this module's types).
        from agentd.server.ops_store import WrongTarget

        raise WrongTarget(params.target, ops.agent_name)
    record = await ops.get_job(params.job)
    return await ops.request_approval(
        record,
        params=dict(params.params),
        expires_in_s=params.expires_in_s,
        comment=params.comment,
        by=ctx.operator,
        origin=_origin(ctx),
    )


@handles("approvals.list")
async def approvals_list(
    ops: AgentOps, params: ApprovalsQuery, ctx: CallContext
) -> ApprovalsResult:
    return ApprovalsResult(approvals=await ops.list_approvals(params.state, params.limit))


@handles("approvals.get")
async def approvals_get(ops: AgentOps, params: ApprovalId, ctx: CallContext) -> ApprovalInfo:
    return await ops.get_approval(params.id)


@handles("approvals.approve")
async def approvals_approve(ops: AgentOps, params: ApprovalSign, ctx: CallContext) -> ApprovalInfo:
    return await ops.approve(params.intent, params.signature, by=ctx.operator, origin=_origin(ctx))


@handles("approvals.reject")
async def approvals_reject(
    ops: AgentOps, params: ApprovalWithdraw, ctx: CallContext
) -> ApprovalInfo:
    return await ops.withdraw_approval(
        params.id,
        by=ctx.operator,
        role=ctx.role,
        comment=params.comment,
        cancelling=False,
        origin=_origin(ctx),
    )


@handles("approvals.cancel")
async def approvals_cancel(
    ops: AgentOps, params: ApprovalWithdraw, ctx: CallContext
) -> ApprovalInfo:
    return await ops.withdraw_approval(
        params.id,
        by=ctx.operator,
        role=ctx.role,
        comment=params.comment,
        cancelling=True,
        origin=_origin(ctx),
    )


@handles("audit.since")
async def audit_since(ops: AgentOps, params: AuditSince, ctx: CallContext) -> AuditBatch:
    return await ops.audit_since(
        params.seq,
        min(params.limit, ctx.limits.max_batch),
        actor=params.actor,
        action=params.action,
        target=params.target,
    )


@handles("audit.verify")
async def audit_verify(ops: AgentOps, params: Empty, ctx: CallContext) -> ChainReport:
    return await ops.audit_verify()


# -- alerts ----------------------------------------------------------------------------------


@handles("alerts.list")
async def alerts_list(ops: AgentOps, params: AlertsQuery, ctx: CallContext) -> AlertsResult:
    return await ops.list_alerts(params)


@handles("alerts.ack")
async def alerts_ack(ops: AgentOps, params: AlertAck, ctx: CallContext) -> AlertsResult:
    # Issue 5: acknowledging is an audited action (ops records who, what and from where).
    return await ops.ack_alerts(list(params.ids), by=ctx.operator, origin=_origin(ctx))


@handles("alerts.since")
async def alerts_since(ops: AgentOps, params: AlertsSince, ctx: CallContext) -> AlertsBatch:
    return await ops.alerts_since(params.seq, min(params.limit, ctx.limits.max_batch))


_missing = set(METHODS) - set(HANDLERS)
if _missing:  # pragma: no cover - caught by importing the module in any test
    raise RuntimeError(f"methods without a handler: {sorted(_missing)}")
