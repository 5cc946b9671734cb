"""The method catalogue (method -> params type, result type, minimum role) and topics.

The agent enforces ``min_role`` in the Connection before a handler runs, and
docs/protocol.md is checked against these two dicts by a test.

Role decisions: reading is ``viewer``; triggering, cancelling and switching a
job on or off is ``operator``; changing what a job or script *runs* (it runs
as root) is ``admin``. ``coordinator`` may do what a viewer and an operator may
(``Role.allows``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.alerts import (
    Alert,
    AlertAck,
    AlertsBatch,
    AlertsQuery,
    AlertsResult,
    AlertsSince,
)
from shared.approvals import (
    ApprovalId,
    ApprovalInfo,
    ApprovalRequest,
    ApprovalSign,
    ApprovalsQuery,
    ApprovalsResult,
    ApprovalWithdraw,
)
from shared.audit import AuditBatch, AuditSince, ChainReport
from shared.enums import Role
from shared.models import Execution, JobRecord
from shared.protocol.messages import (
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
    LogChunk,
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
)

__all__ = ["METHODS", "TOPICS", "MethodSpec", "TopicSpec"]


@dataclass(frozen=True, slots=True)
class MethodSpec:
    params: type[Any]
    result: type[Any]
    min_role: Role
    summary: str


@dataclass(frozen=True, slots=True)
class TopicSpec:
    payload: type[Any]
    min_role: Role
    summary: str


V, OP, AP, A = Role.VIEWER, Role.OPERATOR, Role.APPROVER, Role.ADMIN

METHODS: dict[str, MethodSpec] = {
    "agent.info": MethodSpec(Empty, AgentInfo, V, "who the agent is, its epoch and containment"),
    "jobs.list": MethodSpec(Empty, JobsResult, V, "every job with its version and source"),
    "jobs.get": MethodSpec(JobName, JobRecord, V, "one job"),
    "jobs.put": MethodSpec(PutJob, JobRecord, A, "create or replace a job (version-checked)"),
    "jobs.delete": MethodSpec(DeleteJob, Empty, A, "delete a job (version-checked)"),
    "jobs.enable": MethodSpec(JobName, JobRecord, OP, "let a job's schedule fire"),
    "jobs.disable": MethodSpec(JobName, JobRecord, OP, "stop a job's schedule firing"),
    "run": MethodSpec(RunParams, RunResult, OP, "trigger a job now; returns the execution id"),
    "cancel": MethodSpec(ExecutionId, Empty, OP, "cancel a pending, queued or running execution"),
    "executions.get": MethodSpec(ExecutionId, Execution, V, "one execution"),
    "executions.query": MethodSpec(
        ExecutionsQuery, ExecutionsResult, V, "executions by job, status, run, time"
    ),
    "history.since": MethodSpec(HistorySince, HistoryBatch, V, "history sync: changes after seq"),
    "logs.read": MethodSpec(LogsRead, LogSlice, V, "an execution's log from a byte offset"),
    "subscribe": MethodSpec(Subscribe, Empty, V, "start receiving a topic's events"),
    "unsubscribe": MethodSpec(Subscribe, Empty, V, "stop receiving a topic's events"),
    "scripts.put": MethodSpec(ScriptPut, ScriptInfo, A, "store a script, content-addressed"),
    "scripts.list": MethodSpec(Empty, ScriptsResult, V, "every stored script version"),
    "scripts.get": MethodSpec(ScriptRef, Script, V, "one script version with its content"),
    # Approvals (docs/approvals.md): the agent checks the signature, the signer's role,
    # signer != requester, expiry, the definition hash and the nonce itself.
    "approvals.request": MethodSpec(
        ApprovalRequest, ApprovalInfo, OP, "ask for a run that waits for another's approval"
    ),
    "approvals.list": MethodSpec(ApprovalsQuery, ApprovalsResult, V, "approval requests by state"),
    "approvals.get": MethodSpec(ApprovalId, ApprovalInfo, V, "one request, its intent and diff"),
    "approvals.approve": MethodSpec(
        ApprovalSign, ApprovalInfo, AP, "approve with a signed run intent; the run starts"
    ),
    "approvals.reject": MethodSpec(
        ApprovalWithdraw, ApprovalInfo, AP, "reject a pending request with a comment"
    ),
    "approvals.cancel": MethodSpec(
        ApprovalWithdraw, ApprovalInfo, OP, "withdraw one's own pending request (admin: any)"
    ),
    "audit.since": MethodSpec(AuditSince, AuditBatch, V, "audit log sync: entries after seq"),
    "audit.verify": MethodSpec(Empty, ChainReport, V, "check the audit hash chain on the agent"),
    # Alerts (docs/alerts.md): raised and delivered by the agent; the console mirrors them.
    "alerts.list": MethodSpec(AlertsQuery, AlertsResult, V, "alerts by job, kind, unacked"),
    "alerts.ack": MethodSpec(AlertAck, AlertsResult, OP, "acknowledge alerts (audited)"),
    "alerts.since": MethodSpec(AlertsSince, AlertsBatch, V, "alerts sync: changes after seq"),
}

TOPICS: dict[str, TopicSpec] = {
    "executions": TopicSpec(Execution, V, "an execution changed (every status change)"),
    "logs": TopicSpec(LogChunk, V, "new log bytes of one running execution"),
    "heartbeat": TopicSpec(Heartbeat, V, "host metrics and agent state, every few seconds"),
    "jobs": TopicSpec(JobChanged, V, "a job was created, changed or deleted"),
    "approvals": TopicSpec(ApprovalInfo, V, "an approval request was made or decided"),
    "alerts": TopicSpec(Alert, V, "an alert was raised, delivered or acknowledged"),
}
