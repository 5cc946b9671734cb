"""From an execution row to a running process and back to a final status.

The executor owns the life of an execution inside the agent:

* ``create()`` commits the row (status ``pending``) before anything is spawned;
  a scheduled tick has the deterministic id of (job, scheduled_for), so the
  store refuses the same tick twice (DESIGN.md: no restart runs a tick twice).
* ``start()`` applies the job's concurrency policy, refuses new work when the
  disk is full, commits ``queued``, asks the supervisor to spawn, and commits
  ``running`` with the pid. ``queued`` is the line the reconciler respects:
  a queued row without evidence of a spawn is never started again.
* ``finish()`` consumes the supervisor's exit records: the final status, the
  output tails and a retry (a new execution, same run id, retry_index + 1) are
  committed in one transaction, then the log is archived and the exit record
  acknowledged. An exit record that could not be committed (disk full) stays
  unacknowledged in the supervisor and is tried again, so nothing is lost.

Jobs are spawned by the supervisor, never by this process: an agent restart
neither kills nor orphans them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from agentd import logs as joblogs
from agentd import procenv
from agentd.approvals import needs_approval
from agentd.server.scripts import ScriptStore
from agentd.store import Store, meta
from agentd.store import executions as ex_sql
from agentd.supervisor import DiskFull as SupervisorDiskFull
from agentd.supervisor import (
    ExitRecord,
    RunSpec,
    SupervisorClient,
    SupervisorUnavailable,
)
from shared import ids, retry
from shared.enums import ExecutionStatus as S
from shared.enums import Trigger
from shared.errors import IllegalTransition, SquError, UnknownExecution
from shared.jobs import parse_params
from shared.models import Execution, Job, JobRecord
from shared.status import Event, wait_exit_code

__all__ = ["DiskFull", "Executor", "exit_code_of"]

log = logging.getLogger("agentd.executor")

TAIL_BYTES = 4096
# Exits recorded concurrently: enough for the store to merge commits, bounded memory.
FINISH_IN_FLIGHT = 32


class DiskFull(SquError):
    """New work refused because the data disk is (nearly) full."""

    code = "disk_full"

    def __init__(self, path: Path, free_bytes: int, min_free_bytes: int) -> None:
        super().__init__(
            f"not started: only {free_bytes // (1 << 20)} MiB free on the disk holding {path} "
            f"(the agent needs {min_free_bytes // (1 << 20)} MiB to start new work)",
            free_bytes=free_bytes,
        )


# Supervisor outcome -> (event, status) of the execution row.
_OUTCOME_EVENT = {
    "timeout": Event.TIME_OUT,
    "cancelled": Event.CANCEL,
    "spawn_failed": Event.FAIL,
    "lost": Event.LOSE,
}


exit_code_of = wait_exit_code  # one rule for agent and console (shared/status.py)


class Executor:
    """Creates, starts and finishes executions. One per agent; see the module doc."""

    def __init__(
        self,
        *,
        store: Store,
        supervisor: SupervisorClient,
        data_dir: Path,
        server: str,
        get_job: Callable[[str], JobRecord | None],
        arm: Callable[[str, float], None],
        min_free_bytes: int = 64 << 20,
        agent_tz: str | None = None,
        rng: random.Random | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.supervisor = supervisor
        self.data_dir = Path(data_dir)
        self.server = server
        self.get_job = get_job
        self.arm = arm  # scheduler callback: start this pending execution at that wall time
        self.min_free_bytes = min_free_bytes
        self.agent_tz = agent_tz
        self.rng = rng or random.SystemRandom()
        self.wall = wall
        # job name -> ids of its executions that are queued or running (for concurrency).
        self.active: dict[str, set[str]] = {}
        self._waiters: dict[str, list[asyncio.Future[Execution]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unacked: dict[str, ExitRecord] = {}
        self._starting: set[str] = set()
        self._finishing: set[str] = set()
        self.refusing_reason = ""  # set while the disk is full: shown by `status`
        # Called after every committed change of an execution (the daemon points it at the
        # WebSocket server's notify(), so consoles hear of it at once, not at the next poll).
        self.on_change: Callable[[], None] = lambda: None

    # -- creating ----------------------------------------------------------------

    def build(
        self,
        record: JobRecord,
        *,
        trigger: Trigger,
        scheduled_for: float | None = None,
        params: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        retry_index: int = 0,
        triggered_by: str = "",
        status: S = S.QUEUED,
        reason: str = "",
    ) -> Execution:
        """A new execution record (not yet stored). Parameters are validated here.

        A row to start at once is ``queued`` (one commit before the spawn, not
        two); a delayed one (a retry) ``pending``. A scheduled tick gets the
        deterministic id of (job, scheduled_for). A bad manual override raises
        ``InvalidParameter``; a scheduled tick whose parameters have no usable
        default becomes a ``skipped`` row saying so.
        """
        now = self.wall()
        if trigger is Trigger.SCHEDULE and scheduled_for is not None:
            exec_id = ids.scheduled_execution_id(record.job.name, scheduled_for)
        else:
            exec_id = ids.new_execution_id(now=now, rng=self.rng)
        try:
            resolved = parse_params(record.job, dict(params or {}))
        except SquError as exc:
            if trigger in (Trigger.MANUAL, Trigger.API):
                raise  # the operator hears it at once; no row
            resolved, status, reason = {}, S.SKIPPED, f"not started: {exc.message}"
        if status is S.QUEUED and needs_approval(record.job, trigger):
            # docs/approvals.md: the run waits for a signed approval; the approvals sweep
            # gives it a request, and it is started only once approved.
            status = S.AWAITING_APPROVAL
        return Execution(
            id=exec_id,
            job=record.job.name,
            server=self.server,
            run_id=run_id or exec_id,
            trigger=trigger,
            status=status,
            scheduled_for=scheduled_for,
            created_at=now,
            retry_index=retry_index,
            triggered_by=triggered_by,
            params={k: str(v) for k, v in resolved.items()},
            reason=reason,
        )

    async def create(self, record: JobRecord, **fields: Any) -> Execution | None:
        """Build and commit one execution (see ``build``); None if its tick already has a row.

        Call ``start()`` (or ``arm``) next.
        """
        ex = await self.store.call(ex_sql.insert_execution, self.build(record, **fields))
        self.on_change()
        return ex

    async def insert_batch(
        self,
        rows: list[Execution],
        state: Mapping[str, Any] | None = None,
        forget: list[str] | None = None,
    ) -> list[Execution]:
        """Commit many rows, meta ``state`` and meta deletions in one transaction (one fsync).

        Returns the rows that were new (a tick already recorded is left out).
        """
        inserted = await self.store.call(_insert_batch, rows, dict(state or {}), list(forget or []))
        if inserted:
            self.on_change()
        return inserted

    def start_soon(self, ex: Execution) -> None:
        """Start ``ex`` in a task of its own, so one slow spawn never delays a tick."""
        self._background(self._start_logged(ex), f"start-{ex.id}")

    async def _start_logged(self, ex: Execution) -> None:
        try:
            await self.start(ex)
        except Exception:
            log.exception("starting %s (%s) failed", ex.id, ex.job)

    async def drain(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for starts in flight: none is cut between queue and spawn."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)

    async def close(self, timeout_s: float) -> None:
        """At stop, after the exit consumer: let work in flight finish, then cancel the rest.

        Anything cut short is safe: a start is settled by the next reconciliation, an
        exit not acknowledged is delivered again.
        """
        await self.drain(timeout_s)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- starting ----------------------------------------------------------------

    def start_pending_soon(self, exec_id: str) -> None:
        """``start_pending`` in a task of its own (many retries due together start together)."""
        self._background(self._pending_logged(exec_id), f"pending-{exec_id}")

    async def _pending_logged(self, exec_id: str) -> None:
        try:
            await self.start_pending(exec_id)
        except Exception:
            log.exception("starting the pending execution %s failed", exec_id)

    async def start_pending(self, exec_id: str) -> None:
        """Start the pending execution ``exec_id`` (a retry or manual run whose time came)."""
        try:
            ex = await self.store.call(ex_sql.get_execution, exec_id)
        except UnknownExecution:
            return
        if ex.status is not S.PENDING:
            return  # cancelled or already handled meanwhile
        await self.start(ex)

    async def start(self, ex: Execution) -> Execution:
        """Move a pending execution to running (or skipped, with the reason). Returns the row."""
        if ex.status not in (S.PENDING, S.QUEUED) or ex.id in self._starting:
            return ex  # recorded as skipped at creation, or handled meanwhile
        self._starting.add(ex.id)
        try:
            return await self._start(ex)
        finally:
            self._starting.discard(ex.id)

    async def _start(self, ex: Execution) -> Execution:
        record = self.get_job(ex.job)
        if record is None:
            return await self._skip(ex, f"job {ex.job!r} no longer exists on this agent")
        job = record.job
        if not job.enabled and ex.trigger in (Trigger.SCHEDULE, Trigger.RETRY):
            return await self._skip(ex, f"job {ex.job!r} is disabled")
        # Decide and claim the slot with no await in between: two ticks of one job
        # started in the same loop turn see each other (DESIGN.md: overlap policy).
        active = self.active.setdefault(ex.job, set())
        others = sorted(active - {ex.id})
        if others and job.concurrency == "forbid":
            return await self._skip(
                ex, f"concurrency=forbid: {ex.job} is still running ({', '.join(others)})"
            )
        active.add(ex.id)
        try:
            if others and job.concurrency == "replace":
                for other in others:
                    log.info("%s: replacing %s with %s", ex.job, other, ex.id)
                    with contextlib.suppress(SquError):
                        await self.supervisor.cancel(other)
            self._check_disk()
            if ex.status is S.PENDING:
                ex = await self.store.call(ex_sql.apply_event, ex.id, Event.QUEUE, now=self.wall())
            spec = self._run_spec(record, ex)
        except DiskFull as exc:
            active.discard(ex.id)
            return await self._skip(ex, exc.message)
        except SquError as exc:
            active.discard(ex.id)
            if ex.status is S.PENDING:
                return await self._skip(ex, f"not started: {exc.message}")
            return await self._fail_to_start(ex, exc.message)
        except BaseException:
            active.discard(ex.id)
            raise
        return await self._spawn(ex, spec, active)

    async def resume_queued(self, ex: Execution) -> Execution:
        """Hand a ``queued`` row with no run dir to the supervisor again (start-up only).

        Safe because the supervisor never runs an execution id twice: a repeated
        start returns the running job or its recorded exit.
        """
        record = self.get_job(ex.job)
        if record is None:
            return await self._lose(ex, f"job {ex.job!r} no longer exists on this agent")
        active = self.active.setdefault(ex.job, set())
        active.add(ex.id)
        try:
            spec = self._run_spec(record, ex)
        except SquError as exc:
            active.discard(ex.id)
            return await self._fail_to_start(ex, exc.message)
        return await self._spawn(ex, spec, active)

    async def _spawn(self, ex: Execution, spec: RunSpec, active: set[str]) -> Execution:
        try:
            started = await self.supervisor.start(spec)
        except SupervisorDiskFull as exc:
            active.discard(ex.id)
            return await self._skip(ex, exc.message)
        except SupervisorUnavailable:
            # The request may or may not have reached the supervisor: leave the row
            # queued; the reconciler of the next start decides from the evidence.
            raise
        except SquError as exc:
            active.discard(ex.id)
            return await self._fail_to_start(ex, exc.message)
        if isinstance(started, ExitRecord):
            # spawn_failed (bad cwd, user, command) or an exit already recorded: the
            # same record arrives through exits() and finishes the row there.
            return ex
        # boot id and start ticks live in the run dir's started.json (the supervisor's).
        try:
            # No fsync of its own (issue 8): see ex_sql.record_start.
            ex = await self.store.call(
                ex_sql.record_start, ex.id, now=started.started_at, pid=started.pid
            )
        except IllegalTransition:
            # A job that ended at once may have been finished by the exit consumer
            # first (it records the start itself): nothing is missing.
            return await self.store.call(ex_sql.get_execution, ex.id)
        self.on_change()
        log.info(
            "started %s (%s, %s) pid %s%s",
            ex.id,
            ex.job,
            ex.trigger,
            started.pid,
            # Start lag, for the operator's log: how late the spawn was for its tick.
            f", {(started.started_at - ex.scheduled_for) * 1000:.1f} ms after its tick"
            if ex.trigger is Trigger.SCHEDULE and ex.scheduled_for
            else "",
        )
        return ex

    def _check_disk(self) -> None:
        try:
            free = shutil.disk_usage(self.data_dir).free
        except OSError:
            return
        if free < self.min_free_bytes:
            exc = DiskFull(self.data_dir, free, self.min_free_bytes)
            if not self.refusing_reason:
                log.error("%s", exc.message)
            self.refusing_reason = exc.message
            raise exc
        if self.refusing_reason:
            log.warning("disk space is back: starting new work again")
        self.refusing_reason = ""

    def _run_spec(self, record: JobRecord, ex: Execution) -> RunSpec:
        job = record.job
        body, interpreter = self._body(record)
        who = procenv.resolve_user(job.user, job.group)
        env = procenv.build_env(
            job,
            execution_id=ex.id,
            run_id=ex.run_id,
            retry_index=ex.retry_index,
            params=ex.params,
            user=who,
            agent_tz=self.agent_tz,
        )
        # Neither user nor group: the supervisor keeps its own credentials (root's groups).
        as_is = job.user is None and job.group is None
        return RunSpec(
            exec_id=ex.id,
            argv=[*interpreter.split(), "-c", body],
            env=env,
            cwd=job.working_dir or who.home or "/",
            uid=None if as_is else who.uid,
            gid=None if as_is else who.gid,
            groups=None if as_is else list(who.groups),
            timeout_s=job.timeout_s,
            kill_grace_s=job.kill_grace_s,
            max_log_bytes=job.max_log_bytes,
            run_dir=str(self.run_dir(ex.id)),
            min_free_bytes=self.min_free_bytes,
        )

    def _body(self, record: JobRecord) -> tuple[str, str]:
        """What the interpreter runs (``interpreter -c body``) and which interpreter.

        A ``script = "name@sha256:<hex>"`` job runs exactly that stored version; its
        text goes in argv like a command, so a run-as user needs no access to the
        agent's script store. The script's own interpreter applies unless the job
        names one other than the default.
        """
        job = record.job
        if job.command is not None:
            return job.command, job.interpreter
        assert job.script is not None  # parse_job: exactly one of command or script
        script = ScriptStore(self.data_dir / "scripts").get(job.script)  # UnknownScript
        default = msgspec.structs.fields(Job)
        default_interp = next(f.default for f in default if f.name == "interpreter")
        interpreter = job.interpreter
        if interpreter == default_interp and script.info.interpreter:
            interpreter = script.info.interpreter
        return script.content, interpreter

    def run_dir(self, exec_id: str) -> Path:
        return self.data_dir / "runs" / exec_id

    async def _skip(self, ex: Execution, reason: str) -> Execution:
        log.info("skipped %s (%s): %s", ex.id, ex.job, reason)
        done = await self.store.call(
            ex_sql.apply_event, ex.id, Event.SKIP, now=self.wall(), reason=reason
        )
        self.on_change()
        self._resolve_waiters(done)
        return done

    async def _lose(self, ex: Execution, reason: str) -> Execution:
        log.warning("lost %s (%s): %s", ex.id, ex.job, reason)
        done = await self.store.call(
            ex_sql.apply_event, ex.id, Event.LOSE, now=self.wall(), reason=reason
        )
        self._after_final(done, None)
        return done

    async def _fail_to_start(self, ex: Execution, reason: str) -> Execution:
        log.warning("could not start %s (%s): %s", ex.id, ex.job, reason)
        now = self.wall()
        done, follow = await self.store.call(
            _finish_and_retry,
            ex.id,
            Event.FAIL,
            {"finished_at": now, "reason": f"not started: {reason}"},
            self._retry_row(ex, S.FAILED, now),
            now,
        )
        self._after_final(done, follow)
        return done

    # -- finishing ---------------------------------------------------------------

    async def consume_exits(self) -> None:
        """Finish every execution the supervisor reports, for as long as the agent runs."""
        # Several exits are recorded at once (the store merges their commits into one
        # fsync); one execution is never finished by two tasks at the same time.
        limit = asyncio.Semaphore(FINISH_IN_FLIGHT)
        async for record in self.supervisor.exits():
            if record.exec_id in self._finishing:
                continue  # a replay of an exit being recorded right now
            self._finishing.add(record.exec_id)
            await limit.acquire()
            self._background(self._finish_logged(record, limit), f"finish-{record.exec_id}")

    async def _finish_logged(self, record: ExitRecord, limit: asyncio.Semaphore) -> None:
        try:
            await self.finish(record)
        except Exception:
            # Disk full or a bug: keep the record unacknowledged and try again later.
            log.exception("could not record the end of %s; will retry", record.exec_id)
            self._unacked[record.exec_id] = record
        finally:
            self._finishing.discard(record.exec_id)
            limit.release()

    async def retry_unacked(self) -> None:
        """Try again to record exits that failed to commit (called by the upkeep loop)."""
        for exec_id, record in list(self._unacked.items()):
            try:
                await self.finish(record)
            except Exception:
                log.warning("still cannot record the end of %s", exec_id)
                return
            self._unacked.pop(exec_id, None)

    async def finish(self, rec: ExitRecord) -> Execution | None:
        """Commit the final status of ``rec`` (plus a retry if due), archive the log, ack."""
        try:
            ex = await self.store.call(ex_sql.get_execution, rec.exec_id)
        except UnknownExecution:
            log.warning("exit of unknown execution %s acknowledged and dropped", rec.exec_id)
            await self.supervisor.ack(rec.exec_id)
            return None
        if ex.status.is_final:
            await self.supervisor.ack(rec.exec_id)  # a repeat after a restart
            return ex
        if ex.status in (S.PENDING, S.QUEUED) and rec.outcome != "spawn_failed":
            # The spawn happened but its start is not recorded (the agent died, or the
            # job ended before the start path got to it): record it now.
            began = rec.started_at if rec.started_at is not None else rec.finished_at
            try:
                if ex.status is S.PENDING:
                    ex = await self.store.call(ex_sql.apply_event, ex.id, Event.QUEUE, now=began)
                ex = await self.store.call(
                    ex_sql.apply_event, ex.id, Event.START, now=began, pid=rec.pid
                )
            except IllegalTransition:
                ex = await self.store.call(ex_sql.get_execution, ex.id)  # the start path won
                if ex.status.is_final:
                    await self.supervisor.ack(rec.exec_id)
                    return ex
        event, status = _final_event(rec)
        run_dir = self.run_dir(ex.id)
        stdout_tail, stderr_tail = await asyncio.to_thread(_tails, run_dir)
        fields: dict[str, Any] = {
            "finished_at": rec.finished_at,
            "exit_code": rec.exit_code,
            "signal": rec.signal,
            "cpu_time_s": rec.cpu_time_s,
            "peak_rss_kb": rec.peak_rss_kb,
            "log_bytes": rec.log_bytes,
            "log_dropped_bytes": rec.dropped_bytes,
            "stdout_tail": stdout_tail,
            "stderr_tail": stderr_tail,
            "reason": _reason(rec),
        }
        if ex.status is S.PENDING and event is Event.FAIL:
            ex = await self.store.call(ex_sql.apply_event, ex.id, Event.QUEUE, now=rec.finished_at)
        follow = self._retry_row(ex, status, rec.finished_at)
        done, follow = await self.store.call(
            _finish_and_retry, ex.id, event, fields, follow, rec.finished_at
        )
        await self.supervisor.ack(rec.exec_id)
        # Compressing can take a while for a big log: off the exit path, so the next
        # exits are recorded at once. A log left uncompressed (crash) is still readable.
        self._background(self._archive(ex.id, run_dir), f"archive-{ex.id}")
        log.info(
            "finished %s (%s): %s exit=%s%s",
            done.id,
            done.job,
            done.status,
            done.exit_code,
            f"; retry {follow.retry_index} in {(follow.scheduled_for or 0) - rec.finished_at:.1f} s"
            if follow
            else "",
        )
        self._after_final(done, follow)
        return done

    async def _archive(self, exec_id: str, run_dir: Path) -> None:
        try:
            await asyncio.to_thread(joblogs.archive, run_dir)
        except Exception:
            log.exception("archiving the log of %s failed (kept uncompressed)", exec_id)

    def _background(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _retry_row(self, ex: Execution, status: S, now: float) -> Execution | None:
        """The next attempt of ``ex``'s run, if its job's retry policy asks for one."""
        record = self.get_job(ex.job)
        if record is None or ex.trigger is Trigger.API:
            return None
        delay_s = retry.next_delay_s(record.job.retry, ex.retry_index, status, self.rng)
        if delay_s is None:
            return None
        return Execution(
            id=ids.new_execution_id(now=now, rng=self.rng),
            job=ex.job,
            server=ex.server,
            run_id=ex.run_id,
            trigger=Trigger.RETRY,
            status=S.PENDING,
            scheduled_for=now + delay_s,
            created_at=now,
            retry_index=ex.retry_index + 1,
            triggered_by=ex.triggered_by,
            params=dict(ex.params),
        )

    def _after_final(self, done: Execution, follow: Execution | None) -> None:
        self.on_change()
        self.active.get(done.job, set()).discard(done.id)
        if follow is not None:
            self.arm(follow.id, follow.scheduled_for or self.wall())
        else:
            self._resolve_waiters(done)

    # -- cancelling and waiting ----------------------------------------------------

    async def cancel(self, exec_id: str) -> Execution:
        """Cancel a pending execution at once, or ask the supervisor to stop a running one."""
        ex = await self.store.call(ex_sql.get_execution, exec_id)
        if ex.status in (S.PENDING, S.AWAITING_APPROVAL):
            done = await self.store.call(
                ex_sql.apply_event, exec_id, Event.CANCEL, now=self.wall(), reason="cancelled"
            )
            self._resolve_waiters(done)
            return done
        if ex.status in (S.QUEUED, S.RUNNING):
            await self.supervisor.cancel(exec_id)  # the exit record finishes it as cancelled
        return ex

    async def wait_run(self, first: Execution) -> Execution:
        """The last execution of ``first``'s run, once it is final with no retry to follow."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Execution] = loop.create_future()
        self._waiters.setdefault(first.run_id, []).append(fut)
        # The run may have ended before we registered: look once in the store.
        latest = await self._latest_of_run(first)
        if latest is not None and latest.status.is_final and not await self._has_follow(latest):
            self._resolve_waiters(latest)
        return await fut

    async def _latest_of_run(self, first: Execution) -> Execution | None:
        rows = await self.store.call(ex_sql.query_executions, job=first.job, run_id=first.run_id)
        if not rows:
            return None
        return max(rows, key=lambda r: r.retry_index)

    async def _has_follow(self, ex: Execution) -> bool:
        rows = await self.store.call(ex_sql.query_executions, job=ex.job, run_id=ex.run_id)
        return any(r.retry_index > ex.retry_index for r in rows)

    def _resolve_waiters(self, done: Execution) -> None:
        for fut in self._waiters.pop(done.run_id, []):
            if not fut.done():
                fut.set_result(done)


def _final_event(rec: ExitRecord) -> tuple[Event, S]:
    if rec.outcome == "exited":
        if rec.exit_code == 0 and not rec.signal:
            return Event.SUCCEED, S.SUCCESS
        return Event.FAIL, S.FAILED
    event = _OUTCOME_EVENT.get(rec.outcome, Event.LOSE)
    status = {
        Event.TIME_OUT: S.TIMEOUT,
        Event.CANCEL: S.CANCELLED,
        Event.FAIL: S.FAILED,
        Event.LOSE: S.LOST,
    }[event]
    return event, status


def _reason(rec: ExitRecord) -> str:
    if rec.outcome == "spawn_failed":
        return f"not started: {rec.error or 'spawn failed'}"
    if rec.outcome == "timeout":
        return "killed after its timeout"
    if rec.outcome == "lost":
        return rec.error or "the supervisor lost the process"
    if rec.leftovers:
        return f"{rec.leftovers} leftover process(es) were killed"
    return rec.error or ""


def _tails(run_dir: Path) -> tuple[str, str]:
    return _tail(run_dir, "stdout"), _tail(run_dir, "stderr")


def _tail(run_dir: Path, stream: str) -> str:
    try:
        return joblogs.tail_text(run_dir, stream, TAIL_BYTES)
    except (OSError, SquError):
        return ""


def _insert_batch(
    db: Any, rows: list[Execution], state: dict[str, Any], forget: list[str]
) -> list[Execution]:
    with db.atomic():
        inserted = ex_sql.insert_executions(db, rows) if rows else []
        for key, value in state.items():
            meta.set(db, key, value)
        for key in forget:
            meta.delete(db, key)
    return inserted


def _finish_and_retry(
    db: Any,
    exec_id: str,
    event: Event,
    fields: dict[str, Any],
    follow: Execution | None,
    now: float,
) -> tuple[Execution, Execution | None]:
    """One transaction: the final status and the retry row, so a crash cannot lose the retry."""
    with db.atomic():
        done = ex_sql.apply_event(db, exec_id, event, now=now, **fields)
        inserted = ex_sql.insert_execution(db, follow) if follow is not None else None
    return done, inserted
