"""``StoreOps``: the server's ``AgentOps`` over the agent's real store and data directory.

The daemon passes one to ``serve``, with its ``Executor`` so that ``run`` and
``cancel`` start and stop real processes; without one (tests, a read-only
agent) ``run`` records a pending manual execution and ``cancel`` moves the row
to ``cancelled``. Every write names the operator (``by``). Blocking file work
(logs, scripts, psutil) runs in a thread so one slow disk never stalls the loop.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import sqlite_utils

from agentd import logs as joblogs
from agentd.approvals import MANUAL_EXPIRY_S, needs_approval
from agentd.server.alert_ops import AlertOps
from agentd.server.approval_ops import ApprovalOps
from agentd.server.scripts import ScriptStore
from agentd.store import Store, executions, jobs
from agentd.store.errors import StaleJobVersion
from shared import ids
from shared import jobs as shared_jobs
from shared.enums import ExecutionStatus, Trigger
from shared.errors import SquError, UnknownJob
from shared.logframe import HEADER, Kind
from shared.models import Execution, Job, JobRecord
from shared.protocol import (
    PROTOCOL_VERSION,
    AgentInfo,
    Heartbeat,
    JobChanged,
    LogPiece,
    LogSlice,
    Script,
    ScriptInfo,
)
from shared.status import Event

__all__ = ["StoreOps", "WrongTarget"]

CONSOLE_SOURCE = "console"


class WrongTarget(SquError):
    code = "invalid_parameter"

    def __init__(self, target: str, agent: str) -> None:
        super().__init__(
            f"this agent is {agent!r}, not {target!r}: send the run to that agent "
            "(or to a coordinator for pools)",
            target=target,
            agent=agent,
        )


# A run of an approval job asked for with plain ``run`` waits this long for its approval.
RUN_APPROVAL_EXPIRY_S = MANUAL_EXPIRY_S


class StoreOps(ApprovalOps, AlertOps):
    """``AgentOps`` (agentd/server/handlers.py) over ``Store`` and ``DATA/``.

    The approvals and audit methods come from ``ApprovalOps``; every change
    made here is audited with ``record_audit`` once it has committed.
    """

    def __init__(
        self,
        store: Store,
        *,
        agent_name: str,
        agent_version: str,
        data_dir: Path,
        executor: Any = None,
        containment: str = "process-group",
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_jobs_changed: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.store = store
        self.agent_name = agent_name
        self.agent_version = agent_version
        self.data_dir = Path(data_dir)
        self.executor = executor
        self.containment = containment
        self.wall = wall
        self.rng = rng or random.SystemRandom()
        self.scripts = ScriptStore(self.data_dir / "scripts")
        # The daemon's scheduler keeps jobs in memory: it passes a coroutine that reloads
        # them from the store, called after every job change made over the wire.
        self.on_jobs_changed = on_jobs_changed

    async def agent_info(self) -> AgentInfo:
        return AgentInfo(
            name=self.agent_name,
            agent_version=self.agent_version,
            protocol_version=PROTOCOL_VERSION,
            epoch=self.store.epoch,
            containment=self.containment,
            time=self.wall(),
        )

    # -- jobs ------------------------------------------------------------------------

    async def list_jobs(self) -> list[JobRecord]:
        return await self.store.call(jobs.list_jobs)

    async def get_job(self, name: str) -> JobRecord:
        record = await self.store.call(jobs.get_job, name)
        if record is None:
            raise UnknownJob(name, self.agent_name)
        return record

    async def put_job(self, job: Job, expected_version: int | None, by: str) -> JobRecord:
        # The wire gave us a typed Job; parse_job adds the semantic checks (cron, env names,
        # time zone...) every other door applies, so the wire is no back door.
        checked = shared_jobs.parse_job(msgspec.to_builtins(job), where=f"jobs.put by {by}")
        before = await self.store.call(jobs.get_job, checked.name)
        record = await self.store.call(
            jobs.put_job,
            checked,
            source=CONSOLE_SOURCE,
            now=self.wall(),
            by=by,
            expected_version=expected_version,
        )
        await self.record_audit(
            "job.put",
            by=by,
            target=record.job.name,
            before_hash=before.definition_hash if before is not None else "",
            after_hash=record.definition_hash,
            detail={"version": record.version},
        )
        await self._jobs_changed()
        return record

    async def delete_job(self, name: str, expected_version: int | None, by: str) -> None:
        before = await self.store.call(jobs.get_job, name)
        await self.store.call(_delete_checked, name, expected_version, now=self.wall(), by=by)
        await self.record_audit(
            "job.delete",
            by=by,
            target=name,
            before_hash=before.definition_hash if before is not None else "",
        )
        await self._jobs_changed()

    async def set_enabled(self, name: str, enabled: bool, by: str) -> JobRecord:
        record = await self.store.call(jobs.set_enabled, name, enabled, now=self.wall(), by=by)
        await self.record_audit(
            "job.enable" if enabled else "job.disable",
            by=by,
            target=name,
            after_hash=record.definition_hash,
            detail={"version": record.version},
        )
        await self._jobs_changed()
        return record

    async def _jobs_changed(self) -> None:
        if self.on_jobs_changed is not None:
            await self.on_jobs_changed()

    # -- executions -------------------------------------------------------------------

    async def run(self, job: str, params: dict[str, str], target: str | None, by: str) -> str:
        if target is not None and target != self.agent_name:
            raise WrongTarget(target, self.agent_name)
        record = await self.get_job(job)
        if needs_approval(record.job, Trigger.MANUAL):
            # docs/approvals.md: the run waits in awaiting_approval; the request is audited.
            info = await self.request_approval(
                record,
                params=params,
                expires_in_s=RUN_APPROVAL_EXPIRY_S,
                comment="",
                by=by,
                origin="wire",
            )
            return info.intent.execution_id
        if self.executor is not None:
            ex = await self.executor.create(
                record, trigger=Trigger.MANUAL, params=params, triggered_by=by
            )
            await self.record_audit(
                "run",
                by=by,
                target=ex.id,
                after_hash=record.definition_hash,
                detail={"job": job},
            )
            await self.executor.start(ex)
            return str(ex.id)
        now = self.wall()
        exec_id = ids.new_execution_id(now=now, rng=self.rng)
        resolved = shared_jobs.parse_params(record.job, params)
        ex = Execution(
            id=exec_id,
            job=job,
            server=self.agent_name,
            run_id=exec_id,
            trigger=Trigger.MANUAL,
            status=ExecutionStatus.PENDING,
            created_at=now,
            triggered_by=by,
            params={k: str(v) for k, v in resolved.items()},
        )
        await self.store.call(executions.insert_execution, ex)
        await self.record_audit(
            "run", by=by, target=exec_id, after_hash=record.definition_hash, detail={"job": job}
        )
        return exec_id

    async def cancel(self, exec_id: str, by: str) -> None:
        if self.executor is not None:
            await self.executor.cancel(exec_id)
            await self.record_audit("cancel", by=by, target=exec_id)
            return
        await self.store.call(
            executions.apply_event,  # type: ignore[arg-type]
            exec_id,
            Event.CANCEL,
            now=self.wall(),
            reason=f"cancelled by {by}",
        )
        await self.record_audit("cancel", by=by, target=exec_id)

    async def get_execution(self, exec_id: str) -> Execution:
        return await self.store.call(executions.get_execution, exec_id)

    async def query_executions(
        self,
        *,
        job: str | None,
        status: list[ExecutionStatus] | None,
        run_id: str | None,
        since: float | None,
        until: float | None,
        limit: int,
    ) -> list[Execution]:
        return await self.store.call(
            executions.query_executions,
            job=job,
            status=[s.value for s in status] if status is not None else None,
            run_id=run_id,
            since=since,
            until=until,
            limit=limit,
        )

    async def history_since(self, seq: int, limit: int) -> tuple[str, int, list[Execution]]:
        floor, rows = await self.store.call(_history, seq, limit)
        return self.store.epoch, floor, rows

    async def job_changes_since(self, seq: int) -> list[tuple[int, JobChanged]]:
        changes = await self.store.call(jobs.changes_since, seq, 500)
        return [
            (
                c.seq,
                JobChanged(
                    name=c.name,
                    version=c.version,
                    deleted=c.record is None,
                    by=c.deleted_by if c.record is None else c.record.updated_by,
                ),
            )
            for c in changes
        ]

    async def latest_seq(self) -> int:
        return await self.store.call(_latest_seq)

    # -- logs ---------------------------------------------------------------------------

    async def read_log(
        self, exec_id: str, stream: str | None, offset: int, limit: int, skip: int = 0
    ) -> LogSlice:
        await self.get_execution(exec_id)  # unknown_execution before touching the disk
        return await asyncio.to_thread(
            _read_log_slice, self.data_dir, exec_id, stream, offset, limit, skip
        )

    # -- heartbeat ------------------------------------------------------------------------

    async def heartbeat(self) -> Heartbeat:
        running = await self.store.call(_count_running)
        return await asyncio.to_thread(self._host_metrics, running)

    def _host_metrics(self, running: int) -> Heartbeat:
        # Imported on the first heartbeat (someone subscribed), not at start (issue 8).
        import psutil

        load_1, load_5, load_15 = os.getloadavg()
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(str(self.data_dir))
        return Heartbeat(
            agent=self.agent_name,
            agent_version=self.agent_version,
            time=self.wall(),
            load_1=load_1,
            load_5=load_5,
            load_15=load_15,
            # Since the previous call (the first call after start says 0.0): no sleeping here.
            cpu_percent=psutil.cpu_percent(interval=None),
            memory_percent=memory.percent,
            memory_used_bytes=memory.total - memory.available,
            memory_total_bytes=memory.total,
            disk_percent=disk.percent,
            disk_free_bytes=disk.free,
            running=running,
            containment=self.containment,
        )

    # -- scripts ---------------------------------------------------------------------------

    async def put_script(self, name: str, content: str, interpreter: str, by: str) -> ScriptInfo:
        info = await asyncio.to_thread(
            self.scripts.put, name, content, interpreter, by, self.wall()
        )
        await self.record_audit("script.put", by=by, target=info.ref, after_hash=info.sha256)
        return info

    async def list_scripts(self) -> list[ScriptInfo]:
        return await asyncio.to_thread(self.scripts.list_all)

    async def get_script(self, ref: str) -> Script:
        return await asyncio.to_thread(self.scripts.get, ref)


# -- small sync functions run on the store thread ------------------------------------------


def _history(db: sqlite_utils.Database, seq: int, limit: int) -> tuple[int, list[Execution]]:
    # Floor and rows in one call on the store thread, so they describe the same moment.
    return executions.history_floor(db), executions.changes_since(db, seq, limit)


def _latest_seq(db: sqlite_utils.Database) -> int:
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'seq_counter'").fetchone()
    return int(row[0]) if row is not None else 0


def _count_running(db: sqlite_utils.Database) -> int:
    row = db.execute("SELECT COUNT(*) FROM executions WHERE status = 'running'").fetchone()
    return int(row[0])


def _delete_checked(
    db: sqlite_utils.Database, name: str, expected_version: int | None, *, now: float, by: str
) -> None:
    with db.atomic():
        if expected_version is not None:
            record = jobs.get_job(db, name)
            actual = record.version if record is not None else 0
            if actual != expected_version:
                raise StaleJobVersion(
                    name,
                    expected=expected_version,
                    actual=actual,
                    by=record.updated_by if record is not None else "",
                    at=record.updated_at if record is not None else now,
                    deleted=False,
                )
        jobs.delete_job(db, name, now=now, by=by)


# -- logs ----------------------------------------------------------------------------------------


def _read_log_slice(
    data_dir: Path, exec_id: str, stream: str | None, offset: int, limit: int, skip: int
) -> LogSlice:
    """A page of at most ``limit`` log bytes from the cursor (offset, skip).

    agentd.logs reads whole frames (up to 1 MiB each); a frame that would
    overshoot ``limit`` is split here and the cursor stays on it with ``skip``
    bytes consumed, so every byte is delivered once and a reply fits in a frame.
    """
    page = joblogs.read_log(data_dir, exec_id, stream=stream, offset=offset, limit=limit + skip)
    pieces: list[LogPiece] = []
    got = 0
    next_offset, next_skip = page.next_offset, 0
    data_frames = [f for f in page.frames if f.kind == Kind.DATA]
    for index, frame in enumerate(data_frames):
        data = frame.data[skip:] if index == 0 else frame.data
        room = limit - got
        if len(data) > room:
            # The last frame read overshoots (read_log stops right after it): split it.
            taken = (skip if index == 0 else 0) + room
            next_offset = page.next_offset - HEADER.size - len(frame.data)
            next_skip = taken
            data = data[:room]
            if data:
                pieces.append(LogPiece(stream=_stream_name(frame.stream), data=data))
            break
        pieces.append(LogPiece(stream=_stream_name(frame.stream), data=data))
        got += len(data)
    at_end = page.at_end and next_skip == 0
    return LogSlice(
        execution_id=exec_id,
        offset=offset,
        next_offset=next_offset,
        pieces=pieces,
        eof=at_end,
        complete=page.is_finished,
        dropped_bytes=page.dropped_bytes,
        next_skip=next_skip,
    )


def _stream_name(stream: int) -> Any:
    return "stderr" if stream == 2 else "stdout"
