"""What the TUI needs from the fleet, as an interface: ``FleetSource``.

The TUI reads history only from the mirror (``console.fleet.mirror``) and
learns about changes only from the Textual messages a fleet posts
(``ExecutionsChanged``, ``AgentStateChanged``, ``LogChunk``); it asks for
actions through the async methods below. The network implementation (one
reconnecting link per agent) lives in ``console.fleet.fleet``; ``StaticFleet``
here serves fixed data for tests, snapshots and screenshots of the console.

Contract for implementations:

* ``run(post)`` is started once by the app in a worker and runs until
  cancelled; it owns every link task and calls ``post(message)`` (thread-safe,
  non-blocking) for each message. It must never raise for a remote failure:
  a failing agent becomes an ``AgentState`` with ``link=DOWN`` and an error.
* Actions raise ``SquError`` subclasses with a message fit for a toast
  (``AgentUnavailable`` when the agent's link is not up). They must fail fast,
  never hang: the TUI also puts a timeout around each one.
* ``agents()`` is a cheap in-memory read (no I/O): the last known state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol, runtime_checkable

from msgspec.structs import replace as replace_struct
from textual.message import Message

from shared.alerts import Alert
from shared.approvals import ApprovalInfo, ApprovalState
from shared.audit import AuditBatch, AuditEntry, Head
from shared.errors import SquError
from shared.ids import new_execution_id
from shared.models import Job, JobRecord

__all__ = [
    "ActionFailed",
    "AgentState",
    "AgentStateChanged",
    "AgentUnavailable",
    "ExecutionsChanged",
    "FleetSource",
    "HostMetrics",
    "JobsChanged",
    "LinkState",
    "LogChunk",
    "LogPiece",
    "LogSlice",
    "StaticFleet",
    "with_link",
]


class LinkState(StrEnum):
    CONNECTING = "connecting"
    UP = "up"
    AUTH_FAILED = "auth_failed"
    PIN_MISMATCH = "pin_mismatch"
    DOWN = "down"

    @property
    def is_usable(self) -> bool:
        return self is LinkState.UP


@dataclass(frozen=True, slots=True, kw_only=True)
class HostMetrics:
    """The agent's last heartbeat: host load and what it is running."""

    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    cpu_pct: float = 0.0
    mem_pct: float = 0.0
    disk_pct: float = 0.0
    running: int = 0
    containment: str = ""  # "cgroup" | "pgroup" (DESIGN.md: the agent reports which)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentState:
    """One agent as the console knows it right now."""

    name: str
    url: str
    link: LinkState = LinkState.CONNECTING
    since: float = 0.0  # when ``link`` last changed (epoch s)
    version: str = ""
    timezone: str = ""  # the agent's zone: jobs without their own zone run in it
    metrics: HostMetrics | None = None
    last_seen: float | None = None  # last frame received (epoch s)
    error: str = ""  # why the link is not up, in words

    @property
    def is_stale(self) -> bool:
        """Metrics and history are last-known values, not live ones."""
        return self.link is not LinkState.UP


class AgentUnavailable(SquError):
    """An action on an agent whose link is not up: fails at once, never waits."""

    code = "agent_unavailable"

    def __init__(self, agent: str, link: str) -> None:
        super().__init__(f"agent {agent} is {link}: try again when it is up", agent=agent)


class ActionFailed(SquError):
    """An action the agent refused or that did not answer in time."""

    code = "action_failed"

    def __init__(self, action: str, agent: str, why: str) -> None:
        super().__init__(f"{action} on {agent} failed: {why}", agent=agent, action=action)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogPiece:
    """A run of bytes from one stream; ``stream="dropped"`` marks a cap gap."""

    stream: str  # "stdout" | "stderr" | "dropped"
    data: bytes = b""
    dropped_bytes: int = 0  # for "dropped": how many bytes the cap removed here


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSlice:
    """A page of a stored log; read again from ``next_offset`` for more."""

    pieces: tuple[LogPiece, ...]
    next_offset: int
    is_eof: bool


# Messages the fleet posts to the app. They are plain data: the handlers
# re-query the mirror (attributes down, messages up).


class ExecutionsChanged(Message):
    """These executions of ``agent`` were stored in the mirror (new or updated)."""

    def __init__(self, agent: str, ids: Sequence[str]) -> None:
        super().__init__()
        self.agent = agent
        self.ids = tuple(ids)


class AgentStateChanged(Message):
    """``agent``'s link state or heartbeat changed; read ``fleet.agents()``."""

    def __init__(self, agent: str) -> None:
        super().__init__()
        self.agent = agent


class JobsChanged(Message):
    """``agent``'s job definitions changed in the mirror."""

    def __init__(self, agent: str) -> None:
        super().__init__()
        self.agent = agent


class AlertRaised(Message):
    """``agent`` pushed an alert (new, delivered or acknowledged): the app toasts new ones."""

    def __init__(self, agent: str, alert: Alert) -> None:
        super().__init__()
        self.agent = agent
        self.alert = alert


class LogChunk(Message):
    """Live output of a followed execution (raw bytes: decode and make inert to show)."""

    def __init__(self, agent: str, exec_id: str, stream: str, data: bytes) -> None:
        super().__init__()
        self.agent = agent
        self.exec_id = exec_id
        self.stream = stream
        self.data = data


Post = Callable[[Message], object]


@runtime_checkable
class FleetSource(Protocol):
    """The fleet as the TUI sees it (see the module docstring for the contract)."""

    def agents(self) -> list[AgentState]: ...

    async def run(self, post: Post) -> None: ...

    async def trigger(self, job: str, agent: str, params: dict[str, str]) -> str: ...

    async def cancel(self, agent: str, exec_id: str) -> None: ...

    async def put_job(self, agent: str, job: Job, expected_version: int | None) -> JobRecord: ...

    async def set_enabled(self, agent: str, job: str, enabled: bool) -> JobRecord: ...

    async def read_log(self, agent: str, exec_id: str, offset: int, limit: int) -> LogSlice: ...

    def follow_log(self, agent: str, exec_id: str, offset: int) -> AsyncIterator[LogPiece]: ...

    # Approvals and audit (docs/approvals.md, docs/audit.md); the agent decides, these ask.
    async def list_approvals(
        self, agent: str, state: ApprovalState | None
    ) -> list[ApprovalInfo]: ...

    async def approve(self, agent: str, info: ApprovalInfo) -> ApprovalInfo:
        """Sign ``info.intent`` with the operator's key and send it."""
        ...

    async def reject(self, agent: str, request_id: str, comment: str) -> ApprovalInfo: ...

    async def audit_since(self, agent: str, seq: int, limit: int) -> AuditBatch: ...

    # Alerts (docs/alerts.md): raised by the agents; acknowledging is audited there.
    async def list_alerts(self, agent: str, *, unacked: bool) -> tuple[list[Alert], int]:
        """(alerts newest first, the agent's unacknowledged count)."""
        ...

    async def ack_alert(self, agent: str, alert_id: str) -> Alert: ...


@dataclass
class StaticFleet:
    """A fleet over fixed data, in process: for tests, snapshots and screenshots.

    Actions succeed on agents whose link is up and raise ``AgentUnavailable``
    otherwise, like the real fleet. Logs come from ``logs`` (exec id ->
    pieces). ``post`` is set once ``run`` starts; tests use ``emit`` to post
    messages as a link would.
    """

    states: list[AgentState]
    logs: dict[str, list[LogPiece]] = field(default_factory=dict)
    now: Callable[[], float] = lambda: 1_800_000_000.0
    triggered: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    cancelled: list[tuple[str, str]] = field(default_factory=list)
    saved: list[tuple[str, Job]] = field(default_factory=list)
    approvals: dict[str, list[ApprovalInfo]] = field(default_factory=dict)
    audit: dict[str, list[AuditEntry]] = field(default_factory=dict)
    decided: list[tuple[str, str, str]] = field(default_factory=list)  # (agent, id, state)
    alerts: dict[str, list[Alert]] = field(default_factory=dict)
    post: Post | None = None
    _seq: int = 0

    def agents(self) -> list[AgentState]:
        return list(self.states)

    async def run(self, post: Post) -> None:
        self.post = post
        await asyncio.Event().wait()  # like a real fleet: runs until cancelled

    def emit(self, message: Message) -> None:
        """Post ``message`` as a link would (only once ``run`` has started)."""
        if self.post is None:
            raise RuntimeError("StaticFleet.emit before run() started")
        self.post(message)

    def set_state(self, state: AgentState) -> None:
        """Replace one agent's state and tell the app, as a link does on a change."""
        self.states = [state if s.name == state.name else s for s in self.states]
        if self.post is not None:
            self.post(AgentStateChanged(state.name))

    def _require_up(self, agent: str) -> AgentState:
        for state in self.states:
            if state.name == agent:
                if not state.link.is_usable:
                    raise AgentUnavailable(agent, state.link.value)
                return state
        raise AgentUnavailable(agent, "not in the inventory")

    async def trigger(self, job: str, agent: str, params: dict[str, str]) -> str:
        import random

        self._require_up(agent)
        self.triggered.append((job, agent, dict(params)))
        self._seq += 1
        return new_execution_id(now=self.now(), rng=random.Random(self._seq))

    async def cancel(self, agent: str, exec_id: str) -> None:
        self._require_up(agent)
        self.cancelled.append((agent, exec_id))

    async def put_job(self, agent: str, job: Job, expected_version: int | None) -> JobRecord:
        self._require_up(agent)
        self.saved.append((agent, job))
        now = self.now()
        version = (expected_version or 0) + 1
        return JobRecord(
            job=job,
            version=version,
            source="console",
            definition_hash="",
            created_at=now,
            updated_at=now,
        )

    async def set_enabled(self, agent: str, job: str, enabled: bool) -> JobRecord:
        self._require_up(agent)
        now = self.now()
        return JobRecord(
            job=Job(name=job, enabled=enabled),
            version=1,
            source="console",
            definition_hash="",
            created_at=now,
            updated_at=now,
        )

    async def list_approvals(self, agent: str, state: ApprovalState | None) -> list[ApprovalInfo]:
        self._require_up(agent)
        return [a for a in self.approvals.get(agent, []) if state is None or a.state is state]

    async def approve(self, agent: str, info: ApprovalInfo) -> ApprovalInfo:
        return self._decide(agent, info.intent.request_id, ApprovalState.APPROVED, "")

    async def reject(self, agent: str, request_id: str, comment: str) -> ApprovalInfo:
        return self._decide(agent, request_id, ApprovalState.REJECTED, comment)

    def _decide(
        self, agent: str, request_id: str, state: ApprovalState, comment: str
    ) -> ApprovalInfo:
        self._require_up(agent)
        found = self.approvals.get(agent, [])
        for index, info in enumerate(found):
            if info.intent.request_id == request_id:
                done = replace_struct(info, state=state, decision_comment=comment)
                found[index] = done
                self.decided.append((agent, request_id, state.value))
                return done
        raise ActionFailed("approve", agent, f"no approval request {request_id!r}")

    async def audit_since(self, agent: str, seq: int, limit: int) -> AuditBatch:
        self._require_up(agent)
        held = self.audit.get(agent, [])
        entries = [e for e in held if e.seq > seq]
        head = Head(seq=held[-1].seq, hash=held[-1].hash) if held else Head()
        return AuditBatch(entries=entries[:limit], head=head, more=len(entries) > limit)

    async def list_alerts(self, agent: str, *, unacked: bool) -> tuple[list[Alert], int]:
        self._require_up(agent)
        held = self.alerts.get(agent, [])
        shown = [a for a in held if not unacked or a.acked_at is None]
        return sorted(shown, key=lambda a: -a.created_at), sum(a.acked_at is None for a in held)

    async def ack_alert(self, agent: str, alert_id: str) -> Alert:
        self._require_up(agent)
        held = self.alerts.get(agent, [])
        for index, alert in enumerate(held):
            if alert.id == alert_id:
                if alert.acked_at is None:
                    held[index] = replace_struct(alert, acked_at=1.0, acked_by="me")
                return held[index]
        raise ActionFailed("acknowledge", agent, f"no alert {alert_id!r}")

    async def read_log(self, agent: str, exec_id: str, offset: int, limit: int) -> LogSlice:
        # Reading a stored log works from the mirror's agent while it is up only.
        self._require_up(agent)
        pieces = self.logs.get(exec_id, [])
        page = tuple(pieces[offset : offset + limit])
        return LogSlice(
            pieces=page, next_offset=offset + len(page), is_eof=offset + limit >= len(pieces)
        )

    async def follow_log(self, agent: str, exec_id: str, offset: int) -> AsyncIterator[LogPiece]:
        self._require_up(agent)
        for piece in self.logs.get(exec_id, [])[offset:]:
            yield piece


def with_link(state: AgentState, link: LinkState, *, at: float, error: str = "") -> AgentState:
    """``state`` moved to ``link`` at ``at`` (helper for fleets and tests)."""
    return replace(state, link=link, since=at, error=error)
