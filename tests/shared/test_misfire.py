"""shared.misfire: which ticks fire after downtime, per policy, grace window and clock steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.cron import fire_times
from shared.enums import Misfire
from shared.misfire import TickPlan, plan_at, plan_ticks

UTC_ZONE = ZoneInfo("UTC")
NY = ZoneInfo("America/New_York")
HOURLY = "0 * * * *"


def at(hour: int, minute: int = 0, second: float = 0.0, day: int = 1) -> datetime:
    whole = int(second)
    return datetime(2026, 6, day, hour, minute, whole, int((second - whole) * 1e6), tzinfo=UTC_ZONE)


def hours(plan_times: list[datetime]) -> list[str]:
    return [t.strftime("%H:%M:%S") for t in plan_times]


def plan(
    policy: Misfire,
    last: datetime | None,
    now: datetime,
    *,
    expr: str = HOURLY,
    grace_s: float = 3600,
    **kw: object,
) -> TickPlan:
    return plan_ticks(
        expr,
        tz=UTC_ZONE,
        last_tick=last,
        now=now,
        policy=policy,
        grace_s=grace_s,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("policy", list(Misfire))
def test_new_job_fires_nothing_in_the_past(policy: Misfire) -> None:
    """With no last tick (a new job) nothing fires, not even a tick exactly at now."""
    result = plan(policy, None, at(12))
    assert result.fire == []
    assert result.skipped == []
    assert result.cursor == at(12)
    assert result.next_at == at(13)


@pytest.mark.parametrize("policy", list(Misfire))
def test_tick_just_due_fires_under_every_policy(policy: Misfire) -> None:
    """A tick a few milliseconds old is due, not missed, whatever the policy."""
    result = plan(policy, at(11, 59, 59.5), at(12, 0, 0.002))
    assert hours(result.fire) == ["12:00:00"]
    assert result.skipped == []
    assert result.cursor == at(12, 0, 0.002)


def test_skip_fires_a_tick_late_within_tolerance() -> None:
    """A scheduler that woke 5 s late still runs the tick under 'skip'."""
    result = plan(Misfire.SKIP, at(11, 59), at(12, 0, 5))
    assert hours(result.fire) == ["12:00:00"]


def test_skip_after_downtime_fires_nothing_and_reports_missed() -> None:
    """'skip' after downtime runs none of the missed ticks and lists them."""
    result = plan(Misfire.SKIP, at(8, 30), at(12, 20))
    assert result.fire == []
    assert hours(result.skipped) == ["09:00:00", "10:00:00", "11:00:00", "12:00:00"]


def test_run_once_fires_only_the_latest_eligible_tick() -> None:
    """'run_once' after downtime runs the newest tick within grace once, skips the rest."""
    result = plan(Misfire.RUN_ONCE, at(8, 30), at(12, 20))
    assert hours(result.fire) == ["12:00:00"]
    assert hours(result.skipped) == ["09:00:00", "10:00:00", "11:00:00"]


def test_run_once_coalesces_missed_ticks_into_a_due_tick() -> None:
    """'run_once' restarting right at a tick runs that tick and skips the missed ones."""
    result = plan(Misfire.RUN_ONCE, at(8, 30), at(12, 0, 3))
    assert hours(result.fire) == ["12:00:00"]
    assert hours(result.skipped) == ["09:00:00", "10:00:00", "11:00:00"]


def test_run_once_outside_grace_fires_nothing() -> None:
    """'run_once' fires nothing when the newest missed tick is older than the grace window."""
    result = plan(Misfire.RUN_ONCE, at(8, 30), at(12, 20), grace_s=600)
    assert result.fire == []
    assert hours(result.skipped) == ["09:00:00", "10:00:00", "11:00:00", "12:00:00"]


def test_run_all_fires_every_tick_within_grace_oldest_first() -> None:
    """'run_all' runs each missed tick within grace, oldest first, and skips the stale ones."""
    result = plan(Misfire.RUN_ALL, at(6, 30), at(12, 20), grace_s=3 * 3600)
    assert hours(result.fire) == ["10:00:00", "11:00:00", "12:00:00"]
    assert hours(result.skipped) == ["07:00:00", "08:00:00", "09:00:00"]


def test_run_all_is_bounded_by_max_ticks_keeping_the_newest() -> None:
    """'run_all' fires at most max_ticks, the newest; older eligible ones are skipped."""
    result = plan(
        Misfire.RUN_ALL, at(11, 50), at(12, 0, 30), expr="* * * * *", grace_s=3600, max_ticks=3
    )
    assert hours(result.fire) == ["11:58:00", "11:59:00", "12:00:00"]
    # skipped is bounded by max_ticks too, oldest first, and says it is incomplete.
    assert hours(result.skipped) == ["11:51:00", "11:52:00", "11:53:00"]
    assert result.skipped_truncated


def test_stale_backlog_listing_is_truncated_at_max_ticks() -> None:
    """A per-second job down for a day lists at most max_ticks skipped ticks and says so."""
    result = plan(Misfire.SKIP, at(12, day=1), at(12, day=2), expr="* * * * * *", max_ticks=50)
    assert len(result.skipped) == 50
    assert result.skipped_truncated
    assert result.skipped[0] == at(12, 0, 1, day=1)


def test_clock_step_forward_fires_only_what_is_due_now() -> None:
    """A wall clock that jumped 5 h forward is a correction: no backlog, clock_step set."""
    result = plan(Misfire.RUN_ALL, at(7), at(12, 0, 1), grace_s=24 * 3600, wall_jump_s=5 * 3600)
    assert result.clock_step
    assert hours(result.fire) == ["12:00:00"]
    assert result.skipped == []
    assert result.cursor == at(12, 0, 1)


def test_clock_step_back_moves_the_cursor_back() -> None:
    """A wall clock stepped 5 h back restarts from now: due ticks fire (ids dedupe repeats)."""
    result = plan(Misfire.RUN_ONCE, at(12, 0, 1), at(7, 0, 1), wall_jump_s=-5 * 3600)
    assert result.clock_step
    assert hours(result.fire) == ["07:00:00"]
    assert result.cursor == at(7, 0, 1)


def test_small_step_back_waits_without_moving_the_cursor() -> None:
    """A clock a few seconds behind the cursor fires nothing and keeps the cursor."""
    result = plan(Misfire.RUN_ALL, at(12, 0, 30), at(12, 0, 10), expr="* * * * * *")
    assert result.fire == []
    assert result.cursor == at(12, 0, 30)
    assert not result.clock_step


def test_jump_below_threshold_is_ordinary_downtime() -> None:
    """A 2 h forward jump is not a correction: the misfire policy applies."""
    result = plan(Misfire.RUN_ALL, at(9, 30), at(11, 30), grace_s=3 * 3600, wall_jump_s=7200)
    assert not result.clock_step
    assert hours(result.fire) == ["10:00:00", "11:00:00"]


def test_reboot_schedule_plans_nothing() -> None:
    """@reboot has no ticks for the planner; the scheduler fires it at start."""
    result = plan(Misfire.RUN_ALL, at(1), at(12), expr="@reboot")
    assert result.fire == [] and result.next_at is None


def test_naive_now_is_refused() -> None:
    """A naive `now` is our own misuse and raises ValueError."""
    with pytest.raises(ValueError, match="aware"):
        plan(Misfire.SKIP, None, datetime(2026, 1, 1))


@pytest.mark.parametrize("expr", ["30 1 * * *", "30 2 * * *", "*/20 * * * *", "0 */2 * * *"])
def test_scheduler_ticking_every_minute_fires_each_tick_once_across_dst(expr: str) -> None:
    """A scheduler calling plan_ticks each minute through both 2026 DST days fires fire_times."""
    for day in (datetime(2026, 3, 7, 23, tzinfo=NY), datetime(2026, 10, 31, 23, tzinfo=NY)):
        end = day + timedelta(hours=6)
        cursor: datetime | None = day
        fired: list[datetime] = []
        now = day.astimezone(UTC)
        while now <= end:
            now += timedelta(minutes=1, milliseconds=3)
            result = plan_ticks(
                expr, tz=NY, last_tick=cursor, now=now, policy=Misfire.SKIP, grace_s=0
            )
            assert result.skipped == []
            fired += result.fire
            cursor = result.cursor
        expected = list(fire_times(expr, tz=NY, after=day, until=now))
        assert [t.timestamp() for t in fired] == [t.timestamp() for t in expected]


@settings(max_examples=60, deadline=None)
@given(
    expr=st.sampled_from(["* * * * *", "*/7 * * * *", "0 * * * *", "*/20 * * * * *"]),
    policy=st.sampled_from(list(Misfire)),
    down_s=st.integers(0, 6 * 3600),
    late_s=st.floats(0, 30),
    grace_s=st.sampled_from([0, 60, 900, 3600]),
)
def test_every_tick_in_the_window_is_fired_or_skipped_exactly_once(
    expr: str, policy: Misfire, down_s: int, late_s: float, grace_s: int
) -> None:
    """fire and skipped partition the ticks in (last_tick, now], each in time order."""
    last = at(6)
    now = last + timedelta(seconds=down_s + late_s)
    result = plan(policy, last, now, expr=expr, grace_s=grace_s, max_ticks=100_000)
    window = [t.timestamp() for t in fire_times(expr, tz=UTC_ZONE, after=last, until=now)]
    fired = [t.timestamp() for t in result.fire]
    skipped = [t.timestamp() for t in result.skipped]
    assert fired == sorted(fired) and skipped == sorted(skipped)
    assert sorted(fired + skipped) == window
    assert all(now.timestamp() - t <= max(grace_s, 10) for t in fired)
    if policy is Misfire.RUN_ONCE:
        assert len([t for t in fired if now.timestamp() - t > 10]) <= 1


def at_plan(policy: Misfire, last: datetime | None, now: datetime, **kw: object) -> TickPlan:
    return plan_at(
        at(12),
        last_tick=last,
        now=now,
        policy=policy,
        grace_s=kw.pop("grace_s", 3600),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("policy", list(Misfire))
def test_at_time_just_due_fires_under_every_policy(policy: Misfire) -> None:
    """A one-shot time a moment old fires once, whatever the policy."""
    result = at_plan(policy, at(11, 59, 59), at(12, 0, 0.01))
    assert result.fire == [at(12)]
    assert result.next_at is None


def test_at_time_in_the_future_waits() -> None:
    """A one-shot time still ahead fires nothing and is the next wake-up."""
    result = at_plan(Misfire.SKIP, at(10), at(11))
    assert result.fire == [] and result.skipped == []
    assert result.next_at == at(12)


def test_at_time_missed_within_grace_runs_unless_skip() -> None:
    """After downtime a one-shot within grace runs under run_once/run_all, is skipped under skip."""
    assert at_plan(Misfire.RUN_ONCE, at(11), at(12, 30)).fire == [at(12)]
    assert at_plan(Misfire.RUN_ALL, at(11), at(12, 30)).fire == [at(12)]
    assert at_plan(Misfire.SKIP, at(11), at(12, 30)).skipped == [at(12)]


def test_at_time_beyond_grace_is_skipped() -> None:
    """A one-shot missed by more than the grace window is reported skipped, not run."""
    result = at_plan(Misfire.RUN_ONCE, at(11), at(14))
    assert result.fire == [] and result.skipped == [at(12)]


def test_at_time_already_handled_does_not_fire_again() -> None:
    """A one-shot at or before the cursor never fires again."""
    result = at_plan(Misfire.RUN_ALL, at(12), at(12, 5))
    assert result.fire == [] and result.skipped == []


def test_new_at_job_in_the_past_is_reported_skipped() -> None:
    """A one-shot whose time was past when the job appeared is skipped, visibly."""
    result = at_plan(Misfire.RUN_ALL, None, at(13))
    assert result.fire == [] and result.skipped == [at(12)]


def test_at_time_jumped_over_by_a_clock_step_is_neither_run_nor_skipped() -> None:
    """A wall-clock correction over a one-shot time fires nothing and flags the step."""
    result = at_plan(Misfire.RUN_ALL, at(8), at(16), wall_jump_s=8 * 3600)
    assert result.clock_step
    assert result.fire == [] and result.skipped == []


@pytest.mark.parametrize("policy", list(Misfire))
def test_ten_year_backlog_of_a_per_second_job_is_planned_in_bounded_work(policy: Misfire) -> None:
    """Ten years down with a per-second job: work is bounded by max_ticks and grace, not the gap.

    An unbounded walk (3e8 ticks) would hit the per-test timeout.
    """
    last = datetime(2016, 6, 1, tzinfo=UTC)
    now = datetime(2026, 6, 1, 12, 0, 0, 500000, tzinfo=UTC)
    result = plan_ticks(
        "* * * * * *",
        tz=NY,
        last_tick=last,
        now=now,
        policy=policy,
        grace_s=60,
        max_ticks=100,
    )
    assert len(result.skipped) == 100 and result.skipped_truncated
    assert result.fire[-1] == now.replace(microsecond=0)
    assert result.next_at == now.replace(microsecond=0) + timedelta(seconds=1)


def test_due_ticks_beyond_max_ticks_are_reported_skipped() -> None:
    """With max_ticks below the due ticks, the newest fire and the rest are listed as skipped."""
    result = plan(Misfire.SKIP, at(12), at(12, 0, 5.5), expr="* * * * * *", max_ticks=2)
    assert hours(result.fire) == ["12:00:04", "12:00:05"]
    assert hours(result.skipped) == ["12:00:01", "12:00:02"]
    assert result.skipped_truncated
