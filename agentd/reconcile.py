"""Start-up reconciliation: every unfinished execution against the evidence.

Call ``await reconcile(store, supervisor, executor)`` once at start-up, after the
job table is loaded and before the scheduler runs. For each unfinished row:

========================  ===================================================
row                       evidence -> decision
========================  ===================================================
pending                   never handed to the supervisor: armed again (runs
                          at its ``scheduled_for``, or now if that passed)
awaiting_approval         left alone (the approval path owns it)
queued / running          ``exit.json`` in its run dir -> finished with the
                          real exit (the supervisor also replays it)
                          supervisor lists it as running -> adopted: recorded
                          running with its pid; its exit arrives later
                          the server rebooted since (boot id changed) -> lost
                          queued, no run dir -> handed to the supervisor again
                          (it never runs an id twice), or skipped if older
                          than the job's misfire grace
                          queued with a run dir but no record -> lost: it may
                          have been spawned; starting it again could run it
                          twice (DESIGN.md: a skipped run beats a double one)
                          anything else -> lost, with the reason
========================  ===================================================

The boot id of the last start is kept in the store's meta table (``boot_id``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter

from agentd.executor import Executor
from agentd.store import Store, meta
from agentd.store import executions as ex_sql
from agentd.supervisor import SupervisorClient, current_boot_id, read_exit_record
from shared.enums import ExecutionStatus as S
from shared.status import Event

__all__ = ["reconcile"]

DEFAULT_GRACE_S = 3600.0


def _grace_s(executor: Executor, job: str) -> float:
    record = executor.get_job(job)
    return record.job.misfire_grace_s if record is not None else DEFAULT_GRACE_S


log = logging.getLogger("agentd.reconcile")


async def reconcile(store: Store, supervisor: SupervisorClient, executor: Executor) -> str:
    """Settle what the last agent left unfinished; returns a one-line summary for the log."""
    now = time.time()
    boot_id = current_boot_id()
    last_boot = await store.call(meta.get, "boot_id")
    rebooted = last_boot is not None and last_boot != boot_id
    running = {r.exec_id: r for r in await supervisor.list_running()}
    tally: Counter[str] = Counter()
    for ex in await store.call(ex_sql.unfinished):
        if ex.status is S.PENDING:
            executor.arm(ex.id, ex.scheduled_for or now)
            tally["re-armed"] += 1
            continue
        if ex.status is S.AWAITING_APPROVAL:
            continue
        run_dir = executor.run_dir(ex.id)
        record = read_exit_record(run_dir)
        if record is not None:
            await executor.finish(record)
            tally["finished"] += 1
            continue
        if ex.id in running and not rebooted:
            proc = running[ex.id]
            if ex.status is S.QUEUED:
                await store.call(
                    ex_sql.apply_event, ex.id, Event.START, now=proc.started_at, pid=proc.pid
                )
            executor.active.setdefault(ex.job, set()).add(ex.id)
            log.info("re-adopted %s (%s) pid %s", ex.id, ex.job, proc.pid)
            tally["adopted"] += 1
            continue
        if not rebooted and ex.status is S.QUEUED and not run_dir.exists():
            # The supervisor never saw it (it makes the run dir first) or is about to:
            # either way a repeated start of the same id cannot run it twice.
            if now - (ex.scheduled_for or ex.created_at) <= _grace_s(executor, ex.job):
                await executor.resume_queued(ex)
                tally["resumed"] += 1
                continue
            await store.call(
                ex_sql.apply_event,
                ex.id,
                Event.SKIP,
                now=now,
                reason="not started before the agent stopped, and now past its misfire grace",
            )
            tally["skipped"] += 1
            continue
        if rebooted:
            reason = "the server rebooted while it ran"
        elif ex.status is S.QUEUED:
            reason = (
                "the agent stopped while the spawn was in progress and the supervisor has "
                "no record of it; not started again so that it cannot run twice"
            )
        else:
            reason = "the process ended without an exit record (the supervisor lost it)"
        await store.call(ex_sql.apply_event, ex.id, Event.LOSE, now=now, reason=reason)
        log.warning("marked %s (%s) lost: %s", ex.id, ex.job, reason)
        tally["lost"] += 1
    await store.call(meta.set, "boot_id", boot_id)
    return ", ".join(f"{n} {what}" for what, n in sorted(tally.items()))
