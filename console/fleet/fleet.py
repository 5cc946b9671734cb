"""All the console's links: the network ``FleetSource`` for the TUI, and the CLI's client.

``Fleet(inventory, key=..., mirror=...)`` makes one ``Link`` per agent in the
inventory. The TUI calls ``run(post)`` once in a worker (``console/fleet/source.py``
has the contract); the CLI uses it as an async context manager::

    async with Fleet(inventory, key=key) as fleet:
        states = await fleet.settle()        # up, or why not, per agent
        exec_id = await fleet.trigger("backup", "db1", {})

A first connection to a wss:// agent pins its certificate fingerprint in
fleet.toml (re-read before writing, so a concurrent ``squ agents add`` is kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from console.config import Inventory, InventoryError, load_inventory, save_inventory
from console.fleet.link import Backoff, Link
from console.fleet.mirror import Mirror
from console.fleet.source import (
    AgentState,
    AgentUnavailable,
    LogPiece,
    LogSlice,
    Post,
)
from shared.alerts import Alert, AlertAck, AlertsQuery
from shared.approvals import (
    ApprovalInfo,
    ApprovalSign,
    ApprovalsQuery,
    ApprovalState,
    ApprovalWithdraw,
    intent_bytes,
)
from shared.audit import AuditBatch, AuditSince
from shared.identity import APPROVAL_NAMESPACE, PrivateKey, sign
from shared.models import Job, JobRecord
from shared.protocol.messages import ExecutionId, JobName, LogsRead, PutJob, RunParams

__all__ = ["Fleet", "pack_log_cursor", "unpack_log_cursor"]

log = logging.getLogger("console.fleet")

# The wire's log cursor is (byte offset, bytes of that frame already read); the TUI
# pages with one int, so both travel packed in it (a frame is at most 1 MiB < 2**21).
_SKIP_BITS = 21
FOLLOW_POLL_S = 0.3


def pack_log_cursor(offset: int, skip: int) -> int:
    return (offset << _SKIP_BITS) | skip


def unpack_log_cursor(cursor: int) -> tuple[int, int]:
    return cursor >> _SKIP_BITS, cursor & ((1 << _SKIP_BITS) - 1)


class Fleet:
    """Every agent of an inventory, one reconnecting link each (see the module docstring)."""

    def __init__(
        self,
        inventory: Inventory,
        *,
        key: PrivateKey,
        mirror: Mirror | None = None,
        only: Sequence[str] = (),
        client: str = "squ",
        backoff: Backoff | None = None,
        subscribe: bool = True,
        save_pins: bool = True,
    ) -> None:
        self.inventory = inventory
        self.mirror = mirror
        self.key = key  # also signs approvals (docs/approvals.md)
        self.save_pins = save_pins
        entries = [inventory.get(name) for name in only] if only else list(inventory.agents)
        self.links: dict[str, Link] = {
            e.name: Link(
                e,
                key=key,
                mirror=mirror,
                on_pin=self._pin,
                client=client,
                backoff=backoff,
                subscribe=subscribe,
            )
            for e in entries
        }
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    def agents(self) -> list[AgentState]:
        return [link.state for link in self.links.values()]

    async def run(self, post: Post) -> None:
        """Run every link until cancelled (the TUI's worker); a failing agent never raises."""
        for link in self.links.values():
            link.post = post
        async with asyncio.TaskGroup() as tg:
            for link in self.links.values():
                tg.create_task(link.run(), name=f"link {link.name}")

    async def __aenter__(self) -> Fleet:
        self._tasks = [
            asyncio.create_task(link.run(), name=f"link {link.name}")
            for link in self.links.values()
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def settle(self, timeout_s: float = 15.0) -> list[AgentState]:
        """Wait until every link is up or has failed once; returns their states."""

        async def one(link: Link) -> AgentState:
            with contextlib.suppress(TimeoutError):
                return await link.wait_settled(timeout_s)
            return link.state

        return list(await asyncio.gather(*(one(link) for link in self.links.values())))

    def _pin(self, agent: str, fingerprint: str) -> None:
        if not self.save_pins:
            return
        try:
            current = load_inventory(self.inventory.path.parent)
            save_inventory(current.pinned(agent, fingerprint))
            self.inventory = current.pinned(agent, fingerprint)
        except InventoryError as exc:
            log.error("could not pin %s's certificate: %s", agent, exc.message)

    def link(self, agent: str) -> Link:
        found = self.links.get(agent)
        if found is None:
            raise AgentUnavailable(agent, "not in the inventory")
        return found

    def up_link(self, agent: str) -> Link:
        """``agent``'s link if it is up; else ``AgentUnavailable`` at once (never waits)."""
        link = self.link(agent)
        if not link.is_up:
            raise link.unavailable()
        return link

    async def call(self, agent: str, method: str, params: Any) -> Any:
        return await self.up_link(agent).call(method, params)

    # -- actions (FleetSource) ---------------------------------------------------------------

    async def trigger(self, job: str, agent: str, params: dict[str, str]) -> str:
        result = await self.call(agent, "run", RunParams(job=job, params=dict(params)))
        return str(result.execution_id)

    async def cancel(self, agent: str, exec_id: str) -> None:
        await self.call(agent, "cancel", ExecutionId(execution_id=exec_id))

    async def list_approvals(self, agent: str, state: ApprovalState | None) -> list[ApprovalInfo]:
        result = await self.call(agent, "approvals.list", ApprovalsQuery(state=state))
        return list(result.approvals)

    async def approve(self, agent: str, info: ApprovalInfo) -> ApprovalInfo:
        signature = sign(self.key, APPROVAL_NAMESPACE, intent_bytes(info.intent))
        done: ApprovalInfo = await self.call(
            agent, "approvals.approve", ApprovalSign(intent=info.intent, signature=signature)
        )
        return done

    async def reject(self, agent: str, request_id: str, comment: str) -> ApprovalInfo:
        done: ApprovalInfo = await self.call(
            agent, "approvals.reject", ApprovalWithdraw(id=request_id, comment=comment)
        )
        return done

    async def audit_since(self, agent: str, seq: int, limit: int) -> AuditBatch:
        batch: AuditBatch = await self.call(agent, "audit.since", AuditSince(seq=seq, limit=limit))
        return batch

    async def list_alerts(self, agent: str, *, unacked: bool) -> tuple[list[Alert], int]:
        result = await self.call(agent, "alerts.list", AlertsQuery(unacked=unacked))
        return list(result.alerts), int(result.unacked)

    async def ack_alert(self, agent: str, alert_id: str) -> Alert:
        result = await self.call(agent, "alerts.ack", AlertAck(ids=(alert_id,)))
        done: Alert = result.alerts[0]
        return done

    async def put_job(self, agent: str, job: Job, expected_version: int | None) -> JobRecord:
        record: JobRecord = await self.call(
            agent, "jobs.put", PutJob(job=job, expected_version=expected_version)
        )
        return record

    async def set_enabled(self, agent: str, job: str, enabled: bool) -> JobRecord:
        method = "jobs.enable" if enabled else "jobs.disable"
        record: JobRecord = await self.call(agent, method, JobName(name=job))
        return record

    async def read_log(self, agent: str, exec_id: str, offset: int, limit: int) -> LogSlice:
        """One page of a stored log; ``offset`` is an opaque cursor (0: the start).

        ``limit`` is advisory: the agent answers up to ``max_log_chunk_bytes`` a page.
        """
        start, skip = unpack_log_cursor(offset)
        page = await self.call(
            agent, "logs.read", LogsRead(execution_id=exec_id, offset=start, skip=skip)
        )
        pieces = [LogPiece(stream=p.stream, data=p.data) for p in page.pieces]
        if page.dropped_bytes:
            pieces.append(LogPiece(stream="dropped", dropped_bytes=page.dropped_bytes))
        return LogSlice(
            pieces=tuple(pieces),
            next_offset=pack_log_cursor(page.next_offset, page.next_skip),
            is_eof=page.eof,
        )

    async def follow_log(self, agent: str, exec_id: str, offset: int) -> AsyncIterator[LogPiece]:
        """Every piece of the log from ``offset``, live, until the execution has finished.

        Pages ``logs.read`` (every byte once, in order); at the end of what is written
        so far it polls again shortly. A dropped link waits for the reconnect and
        carries on from the same cursor, so nothing is shown twice or skipped.
        """
        cursor = offset
        while True:
            link = self.link(agent)
            if not link.is_up:
                await link.wait_up(60.0)
            start, skip = unpack_log_cursor(cursor)
            try:
                page = await link.call(
                    "logs.read", LogsRead(execution_id=exec_id, offset=start, skip=skip)
                )
            except AgentUnavailable:
                continue
            for piece in page.pieces:
                yield LogPiece(stream=piece.stream, data=piece.data)
            if page.dropped_bytes:
                yield LogPiece(stream="dropped", dropped_bytes=page.dropped_bytes)
            cursor = pack_log_cursor(page.next_offset, page.next_skip)
            if page.eof and page.complete:
                return
            if page.eof:
                await asyncio.sleep(FOLLOW_POLL_S)
