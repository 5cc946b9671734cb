"""The tick loop: which job is due when, and due ticks -> execution rows.

One task sleeps until the next due instant across all jobs (and all pending
retries), wakes, and hands each due tick to the executor. Sleeping uses the
monotonic clock (``asyncio`` timers); what is due is decided on the wall
clock (DESIGN.md: an asyncio loop sleeping until an instant wakes ~1.7 ms
late). The sleep is capped at ``max_sleep_s`` so that a wall-clock step is
noticed; the step is measured (wall advance minus monotonic advance) and
passed to ``shared.misfire``, which treats a large one as a correction
rather than a backlog to fire.

Per job the scheduler keeps the misfire *cursor* (the end of the last planned
window) in the store's meta table (``sched:<job>`` -> cursor + definition
hash), so after downtime the misfire policy sees exactly the ticks that were
missed. A job seen for the first time, re-enabled, or whose definition changed
starts with no cursor: ``plan_ticks`` then fires no backlog.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from agentd.executor import Executor
from agentd.store import Store, meta
from agentd.store.errors import StoreFull
from shared import cron, misfire
from shared.enums import ExecutionStatus as S
from shared.enums import Trigger
from shared.errors import SquError
from shared.models import Execution, JobRecord

__all__ = ["Scheduler", "is_reboot"]

log = logging.getLogger("agentd.scheduler")

# Skipped ticks recorded as rows per job and plan; beyond this, only a log line.
MAX_SKIPPED_ROWS = 50
DISK_FULL_LOG_EVERY_S = 60.0
# A wall/monotonic disagreement above this makes every job re-plan at once.
JUMP_NOTICE_S = 1.0
# How long before a tick its row is committed (issue 8: the fsync of the queued row
# dominated fire lag under I/O load). The row still commits before the spawn (DESIGN.md);
# the spawn itself waits for the tick. docs/decisions/0003-daemon.md, 2026-11-27.
COMMIT_AHEAD_S = 0.25


def is_reboot(expr: str | None) -> bool:
    return expr is not None and expr.strip().lower() == "@reboot"


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


class Scheduler:
    """Owns the due-time of every scheduled job; ``run()`` is the loop (one per agent)."""

    def __init__(
        self,
        *,
        store: Store,
        executor: Executor,
        jobs: Callable[[], Mapping[str, JobRecord]],
        default_tz: str,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        max_sleep_s: float = 30.0,
        max_ticks: int = 1000,
        commit_ahead_s: float = COMMIT_AHEAD_S,
    ) -> None:
        self.store = store
        self.executor = executor
        self.jobs = jobs
        self.default_tz = default_tz
        self.wall = wall
        self.monotonic = monotonic
        self.max_sleep_s = max_sleep_s
        self.max_ticks = max_ticks
        self.commit_ahead_s = commit_ahead_s
        self._cursor: dict[str, float | None] = {}
        self._hash: dict[str, str] = {}
        self._next_due: dict[str, float | None] = {}
        self._pending: list[tuple[float, str]] = []  # (due wall time, execution id)
        self._wake = asyncio.Event()
        self._last_wall = wall()
        self._last_mono = monotonic()

    # -- inputs ------------------------------------------------------------------

    def arm(self, exec_id: str, due: float) -> None:
        """Start the pending execution ``exec_id`` at wall time ``due`` (retries, delayed runs)."""
        heapq.heappush(self._pending, (due, exec_id))
        self._wake.set()

    def jobs_changed(self) -> None:
        """The job table changed (reload, edit): re-plan changed jobs on the next turn."""
        self._wake.set()

    def next_due(self, name: str) -> float | None:
        """When ``name`` fires next (wall time), or None (manual-only, @reboot, disabled, done)."""
        return self._next_due.get(name)

    # -- start-up ----------------------------------------------------------------

    async def fire_reboot_jobs(self, started_at: float) -> int:
        """Fire every enabled ``@reboot`` job once for this agent start; returns how many."""
        fired = 0
        for record in self.jobs().values():
            if record.job.enabled and is_reboot(record.job.cron):
                ex = await self.executor.create(
                    record, trigger=Trigger.SCHEDULE, scheduled_for=started_at
                )
                if ex is not None:
                    self.executor.start_soon(ex)
                    fired += 1
        return fired

    # -- the loop ----------------------------------------------------------------

    async def run(self) -> None:
        """Fire due ticks and pending executions until cancelled."""
        full_logged_at = -DISK_FULL_LOG_EVERY_S
        plan_until: float | None = None
        while True:
            try:
                await self.turn(plan_until=plan_until)
            except asyncio.CancelledError:
                raise
            except StoreFull as exc:
                # DESIGN.md: disk full -> no new work, say so (once a minute, not per tick).
                if self.monotonic() - full_logged_at >= DISK_FULL_LOG_EVERY_S:
                    full_logged_at = self.monotonic()
                    log.error("ticks not recorded, so not run: %s", exc.message)
                await asyncio.sleep(1.0)
            except Exception:
                # One bad job must not stop the clock for the others.
                log.exception("scheduler turn failed; carrying on")
                await asyncio.sleep(1.0)
            # Wake commit_ahead_s before the next tick: the turn commits its row then and
            # starts it at the tick itself (turn(plan_until=...)).
            delay = self._sleep_for()
            self._wake.clear()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
                except TimeoutError:
                    pass
            plan_until = self.wall() + self.commit_ahead_s if self.commit_ahead_s > 0 else None

    def _sleep_for(self) -> float:
        now = self.wall()
        # Ticks wake the loop commit_ahead_s early (their rows commit ahead); a pending
        # retry is started by its due time, so it wakes the loop only then.
        dues = [d - self.commit_ahead_s for d in self._next_due.values() if d is not None]
        if self._pending:
            dues.append(self._pending[0][0])
        if not dues:
            return self.max_sleep_s
        return max(0.0, min(min(dues) - now, self.max_sleep_s))

    def _wall_jump(self) -> float:
        """How far the wall clock stepped since the last turn, beyond real elapsed time."""
        wall, mono = self.wall(), self.monotonic()
        jump = (wall - self._last_wall) - (mono - self._last_mono)
        self._last_wall, self._last_mono = wall, mono
        return jump

    async def turn(self, *, plan_until: float | None = None) -> None:
        """One pass: plan every job that is due (or new, or changed), start due retries.

        With ``plan_until`` (a wall time a little ahead), ticks due by then are planned
        and committed now, and each is started at its own tick by a loop timer: the
        fsync is paid before the tick instead of between the tick and the spawn.
        """
        jump_s = self._wall_jump()
        if abs(jump_s) > JUMP_NOTICE_S:
            log.warning("wall clock stepped by %+.1f s; re-planning every job", jump_s)
        woke = self.wall()
        # Ticks of already planned jobs are planned up to plan_until; a new or changed job
        # (and every job after a clock step) is planned from the real now, so a tick
        # inside the window is never taken for its backlog.
        now = woke if plan_until is None else max(woke, plan_until)
        table = self.jobs()
        batch = _Batch()
        for name in [n for n in self._hash if n not in table]:
            # A removed job forgets its cursor: if it comes back, it starts from then.
            self._next_due.pop(name, None)
            self._hash.pop(name, None)
            self._cursor.pop(name, None)
            batch.forget.append(f"sched:{name}")
        fresh = [r for n, r in table.items() if self._hash.get(n) != r.definition_hash]
        if fresh:
            await self._load_cursors(fresh)
        # Plan every due job first, then commit all their rows and cursors in one
        # transaction (one fsync for a burst of 1,000 jobs), then start them.
        is_fresh = {r.job.name for r in fresh}
        for name, record in table.items():
            due = self._next_due.get(name)
            if name in is_fresh or abs(jump_s) > JUMP_NOTICE_S:
                self._plan(record, woke, jump_s, batch)
            elif due is not None and due <= now:
                self._plan(record, now, jump_s, batch)
        if batch.rows or batch.state or batch.forget:
            inserted = await self.executor.insert_batch(batch.rows, batch.state, batch.forget)
            committed_ms = (self.wall() - woke) * 1000
            loop = asyncio.get_running_loop()
            for ex in inserted:
                if ex.status is S.QUEUED:
                    early_s = (ex.scheduled_for or 0.0) - self.wall()
                    if early_s > 0:
                        # Committed ahead of its tick: spawn at the tick, never before.
                        loop.call_later(early_s, self.executor.start_soon, ex)
                    else:
                        self.executor.start_soon(ex)
            if batch.fired:
                log.debug(
                    "turn: %d tick(s) due, woke %.1f ms late, rows committed %.1f ms later",
                    batch.fired,
                    (woke - batch.earliest) * 1000,
                    committed_ms,
                )
        while self._pending and self._pending[0][0] <= self.wall():
            _, exec_id = heapq.heappop(self._pending)
            self.executor.start_pending_soon(exec_id)

    async def _load_cursors(self, records: list[JobRecord]) -> None:
        """Each job's cursor from the store, or None if it is new, changed or was disabled."""
        keys = [f"sched:{r.job.name}" for r in records]
        saved_all = await self.store.call(_read_meta, keys)
        for record, saved in zip(records, saved_all, strict=True):
            name = record.job.name
            cursor: float | None = None
            if isinstance(saved, dict):
                try:
                    # Same definition and was enabled: resume where it stopped, so the
                    # misfire policy sees the downtime. Otherwise: no backlog.
                    same = saved.get("hash") == record.definition_hash
                    if same and saved.get("enabled", True):
                        cursor = float(saved["cursor"])
                except (ValueError, KeyError, TypeError):
                    log.warning("ignoring unreadable scheduler state for %s: %r", name, saved)
            self._cursor[name] = cursor
            self._hash[name] = record.definition_hash

    def _plan(self, record: JobRecord, now: float, jump_s: float, batch: _Batch) -> None:
        """Plan one job's ticks between its cursor and now into ``batch`` (rows + new cursor)."""
        job = record.job
        if not job.enabled or (job.cron is None and job.at is None) or is_reboot(job.cron):
            self._next_due[job.name] = None
            batch.save(record, now)
            return
        last = self._cursor.get(job.name)
        try:
            tz = ZoneInfo(job.timezone or self.default_tz)
            common: dict[str, Any] = {
                "last_tick": None if last is None else _utc(last),
                "now": _utc(now),
                "policy": job.misfire,
                "grace_s": job.misfire_grace_s,
                "wall_jump_s": jump_s,
            }
            if job.cron is not None:
                plan = misfire.plan_ticks(job.cron, tz=tz, max_ticks=self.max_ticks, **common)
            else:
                assert job.at is not None
                plan = misfire.plan_at(cron.parse_at(job.at, tz), **common)
        except (SquError, ValueError) as exc:
            log.error("job %s cannot be scheduled: %s", job.name, exc)
            self._next_due[job.name] = None
            return
        if plan.clock_step:
            log.warning(
                "%s: wall clock stepped by %+.0f s; ticks it jumped over are not fired",
                job.name,
                jump_s,
            )
        for tick in plan.fire:
            batch.add(
                self.executor.build(
                    record, trigger=Trigger.SCHEDULE, scheduled_for=tick.timestamp()
                )
            )
        # Missed ticks become skipped rows (the newest few), so history shows the gap.
        shown = plan.skipped[-MAX_SKIPPED_ROWS:]
        for tick in shown:
            batch.add(
                self.executor.build(
                    record,
                    trigger=Trigger.SCHEDULE,
                    scheduled_for=tick.timestamp(),
                    status=S.SKIPPED,
                    reason=f"missed while the agent was not running (misfire = {job.misfire})",
                )
            )
        if len(plan.skipped) > len(shown) or plan.skipped_truncated:
            more = "more than " if plan.skipped_truncated else ""
            log.warning(
                "%s: %s%d missed ticks skipped; only the newest %d recorded",
                job.name,
                more,
                len(plan.skipped),
                len(shown),
            )
        cursor = plan.cursor.timestamp()
        self._cursor[job.name] = cursor
        self._next_due[job.name] = None if plan.next_at is None else plan.next_at.timestamp()
        batch.save(record, cursor)


def _read_meta(db: Any, keys: list[str]) -> list[Any]:
    return [meta.get(db, key) for key in keys]


class _Batch:
    """The rows and cursors of one scheduler turn, committed together."""

    def __init__(self) -> None:
        self.rows: list[Execution] = []
        self.state: dict[str, Any] = {}
        self.forget: list[str] = []
        self.fired = 0
        self.earliest = float("inf")

    def add(self, ex: Execution) -> None:
        self.rows.append(ex)
        if ex.status is S.QUEUED and ex.scheduled_for is not None:
            self.fired += 1
            self.earliest = min(self.earliest, ex.scheduled_for)

    def save(self, record: JobRecord, cursor: float) -> None:
        self.state[f"sched:{record.job.name}"] = {
            "cursor": cursor,
            "hash": record.definition_hash,
            "enabled": record.job.enabled,
        }
