"""Every message on the wire, as typed msgspec structs.

A frame is one JSON object whose ``type`` field says which message it is.
What a server accepts (``ClientMessage``) and what a client accepts
(``ServerMessage``) are separate unions, so a message sent the wrong way is a
decode error, not a special case. ``Request.params`` stays raw until the
method is known; then it is decoded into that method's params type from the
catalogue, so wrong types are reported with the path of the bad field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from shared.enums import ExecutionStatus, Role
from shared.models import Execution, Job, JobRecord
from shared.protocol.limits import Limits

__all__ = [
    "PROTOCOL_VERSION",
    "AgentInfo",
    "ClientHello",
    "ClientMessage",
    "DeleteJob",
    "Empty",
    "ErrorReply",
    "EventMessage",
    "ExecutionId",
    "ExecutionsQuery",
    "ExecutionsResult",
    "Heartbeat",
    "HistoryBatch",
    "HistorySince",
    "JobChanged",
    "JobName",
    "JobsResult",
    "LogChunk",
    "LogPiece",
    "LogSlice",
    "LogsRead",
    "PutJob",
    "Request",
    "Result",
    "RunParams",
    "RunResult",
    "Script",
    "ScriptInfo",
    "ScriptPut",
    "ScriptRef",
    "ScriptsResult",
    "ServerHello",
    "ServerMessage",
    "Subscribe",
    "Welcome",
]

# Bumped on any incompatible change; a hello with another version is refused.
PROTOCOL_VERSION = 1

RequestId = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Stream = Literal["stdout", "stderr"]


class _Frozen(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


# -- envelopes ------------------------------------------------------------------


class ServerHello(_Frozen, frozen=True, tag="hello"):
    """The agent's first frame: who it is, and the challenge the operator must sign."""

    version: int
    agent: str
    agent_version: str
    challenge: str
    issued_at: float
    expires_at: float


class ClientHello(_Frozen, frozen=True, tag="hello"):
    """The client's answer: its key and an SSHSIG over the agent's challenge."""

    version: int
    client: Annotated[str, msgspec.Meta(max_length=200)]
    public_key: Annotated[str, msgspec.Meta(max_length=16384)]
    challenge: Annotated[str, msgspec.Meta(max_length=200)]
    proof: Annotated[str, msgspec.Meta(max_length=65536)]


class Welcome(_Frozen, frozen=True, tag="welcome"):
    """Authentication succeeded: who the agent thinks you are, and the limits it applies."""

    operator: str
    role: Role
    limits: Limits


class Request(_Frozen, frozen=True, tag="request"):
    id: RequestId
    method: Annotated[str, msgspec.Meta(max_length=100)]
    params: msgspec.Raw = msgspec.Raw(b"{}")


class Result(_Frozen, frozen=True, tag="result"):
    id: RequestId
    result: msgspec.Raw


class ErrorReply(_Frozen, frozen=True, tag="error"):
    """The one reply to request ``id`` when it failed; ``id`` is None for a frame with no id."""

    id: RequestId | None
    code: str
    message: str
    details: dict[str, Any] = {}


class EventMessage(_Frozen, frozen=True, tag="event"):
    topic: str
    payload: msgspec.Raw


ClientMessage = ClientHello | Request
ServerMessage = ServerHello | Welcome | Result | ErrorReply | EventMessage


# -- params and results -----------------------------------------------------------------


class Empty(_Frozen, frozen=True):
    """No params, or a result that only says "done"."""


class AgentInfo(_Frozen, frozen=True):
    name: str
    agent_version: str
    protocol_version: int
    epoch: str
    containment: str  # "cgroup" | "process-group"
    time: float


class JobName(_Frozen, frozen=True):
    name: Name


class JobsResult(_Frozen, frozen=True):
    jobs: list[JobRecord]


class PutJob(_Frozen, frozen=True):
    """Create or replace a job. ``expected_version`` is the version the edit started from
    (0: the job must not exist yet; None: no check); a stale one is refused (``conflict``)
    naming who changed it and when."""

    job: Job
    expected_version: int | None = None


class DeleteJob(_Frozen, frozen=True):
    name: Name
    expected_version: int | None = None


class RunParams(_Frozen, frozen=True):
    """A manual trigger; ``params`` override the job's parameter defaults, ``target`` is
    the server it is meant for (None: this agent)."""

    job: Name
    params: dict[str, str] = {}
    target: str | None = None


class RunResult(_Frozen, frozen=True):
    execution_id: str


class ExecutionId(_Frozen, frozen=True):
    execution_id: Name


class ExecutionsQuery(_Frozen, frozen=True):
    job: str | None = None
    status: list[ExecutionStatus] | None = None
    run_id: str | None = None
    since: float | None = None  # created_at >= since
    until: float | None = None  # created_at < until
    limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100


class ExecutionsResult(_Frozen, frozen=True):
    executions: list[Execution]


class HistorySince(_Frozen, frozen=True):
    """Every execution change with ``seq`` greater than ``seq``, oldest first."""

    seq: Annotated[int, msgspec.Meta(ge=0)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500


class HistoryBatch(_Frozen, frozen=True):
    """One batch of history sync (shared/protocol/history.py has the rules).

    ``epoch`` is the agent store's identity: a new one means resync from 0.
    ``floor_seq`` is the lowest seq the agent still holds; if the client's cursor
    is below it, the history between them is gone (retention) and the client
    records a gap. ``next_seq`` is the cursor to ask from next; ``more`` says
    whether to ask again right away.
    """

    epoch: str
    floor_seq: int
    executions: list[Execution]
    next_seq: int
    more: bool


class LogsRead(_Frozen, frozen=True):
    """Read an execution's log from byte ``offset`` (an opaque cursor into its log file)."""

    execution_id: Name
    offset: Annotated[int, msgspec.Meta(ge=0)] = 0
    # Bytes of the frame at ``offset`` already read: a log frame can be larger than a
    # chunk, so the cursor is (offset, skip); pass back a slice's next_offset / next_skip.
    skip: Annotated[int, msgspec.Meta(ge=0)] = 0
    limit: Annotated[int, msgspec.Meta(ge=1)] = 256 * 1024
    stream: Stream | None = None  # None: both streams, in order


class LogPiece(_Frozen, frozen=True):
    stream: Stream
    data: bytes  # raw bytes (base64 on the wire): job output is hostile, decode for display only


class LogSlice(_Frozen, frozen=True):
    execution_id: str
    offset: int
    next_offset: int
    pieces: list[LogPiece]
    eof: bool  # nothing after next_offset *yet*
    complete: bool  # the execution has finished: nothing will ever follow
    dropped_bytes: int = 0
    next_skip: int = 0


class Subscribe(_Frozen, frozen=True):
    """Subscribe to (or unsubscribe from) a topic; ``logs`` needs ``execution_id``."""

    topic: Name
    execution_id: str | None = None
    offset: Annotated[int, msgspec.Meta(ge=0)] = 0  # logs: push from this byte offset


class ScriptPut(_Frozen, frozen=True):
    name: Name
    content: Annotated[str, msgspec.Meta(max_length=512 * 1024)]
    interpreter: str = "/bin/sh"


class ScriptInfo(_Frozen, frozen=True):
    name: str
    sha256: str
    ref: str  # "name@sha256:<hex>", what a job's ``script`` field says
    size: int
    interpreter: str
    created_at: float
    created_by: str = ""


class ScriptRef(_Frozen, frozen=True):
    ref: Name  # "name@sha256:<hex>", or "name" for the newest version


class ScriptsResult(_Frozen, frozen=True):
    scripts: list[ScriptInfo]


class Script(_Frozen, frozen=True):
    info: ScriptInfo
    content: str


# -- event payloads ---------------------------------------------------------------


class LogChunk(_Frozen, frozen=True):
    """New log bytes of a running execution, pushed on ``logs``."""

    execution_id: str
    offset: int
    next_offset: int
    pieces: list[LogPiece]
    next_skip: int = 0


class Heartbeat(_Frozen, frozen=True):
    """Host metrics (psutil) and agent state, pushed on ``heartbeat`` every few seconds."""

    agent: str
    agent_version: str
    time: float
    load_1: float
    load_5: float
    load_15: float
    cpu_percent: float
    memory_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    disk_percent: float
    disk_free_bytes: int
    running: int
    containment: str


class JobChanged(_Frozen, frozen=True):
    """A job was created, edited, enabled, disabled or deleted, pushed on ``jobs``."""

    name: str
    version: int
    deleted: bool = False
    by: str = ""
