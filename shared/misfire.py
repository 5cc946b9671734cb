"""Which ticks to fire after the scheduler was away: misfire policy, grace window, clock steps.

The scheduler keeps one cursor per job (the ``cursor`` of the last plan,
stored with the job's state) and calls ``plan_ticks`` when it starts and every
time it wakes for a job. It turns ``plan.fire`` into execution rows (trigger
``schedule``, id from ``scheduled_execution_id(job, tick)``, so a tick planned
twice is still run once), records ``plan.skipped`` as ``skipped`` executions
or one alert, stores ``plan.cursor``, and sleeps until ``plan.next_at``.

The rules, for ticks in ``(last_tick, now]``:

* A tick at most ``due_tolerance_s`` old is *due*, not missed: it fires under
  every policy (a scheduler that woke a little late is not a misfire).
* An older tick is *missed*. It is *eligible* if at most ``grace_s`` old;
  beyond that it is *stale* and never fires.
* ``skip``: fire the due ticks; every missed tick is skipped.
* ``run_once``: fire the due ticks; if there are none, fire the latest eligible
  missed tick. Every other missed tick is skipped (coalesced into that run).
* ``run_all``: fire every eligible missed tick and the due ones, oldest first,
  at most ``max_ticks`` (the newest ones); older eligible ticks are skipped.
* ``last_tick is None`` (a new job, or a job just enabled): nothing in the
  past fires; the cursor starts at ``now``.
* A wall clock that jumped by more than ``CLOCK_STEP_S`` relative to the
  monotonic clock (``wall_jump_s``, measured by the caller while running) is
  a correction, not downtime: only the due ticks fire, the backlog is neither
  fired nor reported as skipped, and ``clock_step`` is set for an alert. A
  smaller step backwards just waits: nothing fires until ``now`` passes
  ``last_tick`` again (the cursor never moves back), so no tick runs twice.
  Debian cron draws the same line at three hours.

Work is bounded: stale ticks are enumerated at most ``max_ticks`` (then
``skipped_truncated``), eligible ones at most ``grace_s`` worth, so the
scheduler can call this on every tick.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.cron import CronExpr, fire_times, parse
from shared.enums import Misfire

__all__ = ["CLOCK_STEP_S", "DUE_TOLERANCE_S", "TickPlan", "plan_at", "plan_ticks"]

# DESIGN.md: "a clock step of more than a few hours is a correction"; Debian cron uses 3 h.
CLOCK_STEP_S = 3 * 3600.0
# How late a tick may be and still count as on time (asyncio wakes ms late; a loaded box, s).
DUE_TOLERANCE_S = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TickPlan:
    """What the scheduler does now for one job. Times are aware datetimes in the job's zone."""

    fire: list[datetime] = field(default_factory=list)  # oldest first
    skipped: list[datetime] = field(default_factory=list)  # oldest first, at most max_ticks
    skipped_truncated: bool = False  # more ticks were missed than listed in ``skipped``
    clock_step: bool = False
    cursor: datetime  # pass back as ``last_tick`` next time
    next_at: datetime | None = None  # the first tick after ``cursor``: when to wake


def plan_ticks(
    expr: str | CronExpr,
    *,
    tz: ZoneInfo,
    last_tick: datetime | None,
    now: datetime,
    policy: Misfire,
    grace_s: float,
    wall_jump_s: float = 0.0,
    max_ticks: int = 1000,
    due_tolerance_s: float = DUE_TOLERANCE_S,
) -> TickPlan:
    """Decide which ticks in ``(last_tick, now]`` fire and which are skipped (see module doc)."""
    record = expr if isinstance(expr, CronExpr) else parse(expr)
    policy = Misfire(policy)
    if now.tzinfo is None or (last_tick is not None and last_tick.tzinfo is None):
        raise ValueError("plan_ticks needs aware datetimes for now and last_tick")
    if max_ticks < 1:
        raise ValueError(f"max_ticks must be >= 1, got {max_ticks}")
    # Arithmetic in UTC: a zone's datetimes add and compare by wall time, fold ignored.
    now_utc = now.astimezone(UTC)
    last_utc = None if last_tick is None else last_tick.astimezone(UTC)
    now = now.astimezone(tz)
    tolerance = timedelta(seconds=max(due_tolerance_s, 0.0))

    if record.is_reboot:
        return TickPlan(cursor=now)  # @reboot is the scheduler's start-up business
    if last_utc is None:
        return _plan(record, tz, cursor=now)
    if abs(wall_jump_s) > CLOCK_STEP_S:
        # A correction: only what is due on the corrected clock runs. After a
        # step back those ticks may have run already; their ids dedupe them.
        after = now_utc - tolerance
        if now_utc > last_utc:
            after = max(after, last_utc)
        on_time = list(fire_times(record, tz=tz, after=after, until=now_utc))[-max_ticks:]
        return _plan(record, tz, cursor=now, fire=on_time, clock_step=True)
    if now_utc <= last_utc:
        # A small step back (or no time passed): wait; the cursor never moves back.
        return _plan(record, tz, cursor=last_utc.astimezone(tz))

    window = timedelta(seconds=max(grace_s, 0.0))
    if policy is Misfire.SKIP or window < tolerance:
        window = tolerance
    due_after = now_utc - tolerance
    stale_until = now_utc - window

    skipped: list[datetime] = []
    truncated = False

    def skip(tick: datetime) -> None:
        nonlocal truncated
        if len(skipped) < max_ticks:
            skipped.append(tick)
        else:
            truncated = True

    # Stale: beyond grace. Listed (bounded) for the history, never fired.
    for tick in fire_times(record, tz=tz, after=last_utc, until=stale_until):
        if len(skipped) >= max_ticks:
            truncated = True
            break
        skipped.append(tick)

    due: list[datetime] = []
    latest_missed: datetime | None = None
    newest: deque[datetime] = deque(maxlen=max_ticks)  # run_all: eligible + due
    upcoming: datetime | None = None
    # One pass over the eligible ticks that also finds the next one after now (when to wake).
    for tick in fire_times(record, tz=tz, after=max(last_utc, stale_until)):
        if tick > now_utc:
            upcoming = tick
            break
        if policy is Misfire.RUN_ALL:
            if len(newest) == max_ticks:
                skip(newest[0])
            newest.append(tick)
        elif tick > due_after:
            due.append(tick)
        elif policy is Misfire.RUN_ONCE:
            if latest_missed is not None:
                skip(latest_missed)
            latest_missed = tick
        else:
            skip(tick)

    if policy is Misfire.RUN_ALL:
        fire = list(newest)
    elif due or latest_missed is None:
        if latest_missed is not None:
            skip(latest_missed)  # coalesced into the due run
        for tick in due[:-max_ticks]:
            skip(tick)  # only with a max_ticks below the ticks in DUE_TOLERANCE_S
        fire = due[-max_ticks:]
    else:
        fire = [latest_missed]
    # skip() appends in tick order except a coalesced run_once tick, which precedes `due`.
    skipped.sort(key=datetime.timestamp)
    return TickPlan(
        fire=fire, skipped=skipped, skipped_truncated=truncated, cursor=now, next_at=upcoming
    )


def _plan(
    record: CronExpr,
    tz: ZoneInfo,
    *,
    cursor: datetime,
    fire: list[datetime] | None = None,
    skipped: list[datetime] | None = None,
    skipped_truncated: bool = False,
    clock_step: bool = False,
) -> TickPlan:
    upcoming = next(iter(fire_times(record, tz=tz, after=cursor)), None)
    return TickPlan(
        fire=fire or [],
        skipped=skipped or [],
        skipped_truncated=skipped_truncated,
        clock_step=clock_step,
        cursor=cursor,
        next_at=upcoming,
    )


def plan_at(
    when: datetime,
    *,
    last_tick: datetime | None,
    now: datetime,
    policy: Misfire,
    grace_s: float,
    wall_jump_s: float = 0.0,
    due_tolerance_s: float = DUE_TOLERANCE_S,
) -> TickPlan:
    """The same rules as ``plan_ticks`` for a one-shot ``at`` job whose only tick is ``when``.

    One difference: a new job (``last_tick is None``) whose time is already
    past reports it in ``skipped``, so a one-shot that will never run shows in
    the history instead of vanishing. ``when`` comes from ``cron.parse_at``.
    """
    if now.tzinfo is None or when.tzinfo is None:
        raise ValueError("plan_at needs aware datetimes for when and now")
    if last_tick is not None and last_tick.tzinfo is None:
        raise ValueError("plan_at needs an aware last_tick")
    policy = Misfire(policy)
    tz = when.tzinfo
    now_utc = now.astimezone(UTC)
    when_utc = when.astimezone(UTC)
    now_local = now.astimezone(tz)
    last_utc = None if last_tick is None else last_tick.astimezone(UTC)
    tolerance = timedelta(seconds=max(due_tolerance_s, 0.0))
    age = now_utc - when_utc
    upcoming = when if when_utc > now_utc else None

    if last_utc is not None and now_utc <= last_utc and abs(wall_jump_s) <= CLOCK_STEP_S:
        # A small step back: wait; the cursor never moves back.
        cursor = last_utc.astimezone(tz)
        return TickPlan(cursor=cursor, next_at=when if when_utc > last_utc else None)
    if upcoming is not None or (last_utc is not None and when_utc <= last_utc):
        return TickPlan(cursor=now_local, next_at=upcoming)  # not yet, or handled before
    if last_utc is None:
        return TickPlan(cursor=now_local, skipped=[when])
    if abs(wall_jump_s) > CLOCK_STEP_S:
        return TickPlan(cursor=now_local, fire=[when] if age <= tolerance else [], clock_step=True)
    window = timedelta(seconds=max(grace_s, 0.0))
    if policy is Misfire.SKIP or window < tolerance:
        window = tolerance
    if age <= window:
        return TickPlan(cursor=now_local, fire=[when])
    return TickPlan(cursor=now_local, skipped=[when])
