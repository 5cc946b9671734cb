"""shared.cron agrees with cronsim (an independent evaluator) around every DST change.

cronsim applies Debian cron's DST rule to 5-field fixed-time expressions and
plain instant matching to the rest; 6-field expressions get no DST handling in
cronsim, so they are compared only where the rule cannot matter (wildcard
schedules, or zones without DST).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

import pytest
from cronsim import CronSim
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.cron import fire_times, parse
from shared.errors import InvalidSchedule

ZONES = (
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",
    "Europe/Berlin",
    "UTC",
    "Asia/Kolkata",
)
NO_DST = ("UTC", "Asia/Kolkata")
HALF_HOUR_DST = ("Australia/Lord_Howe",)
MAX_TICKS = 400


@cache
def transitions(zone: str, year: int = 2026) -> tuple[datetime, ...]:
    """UTC instants in ``year`` where ``zone`` changes offset; mid-year noon if none."""
    tz = ZoneInfo(zone)
    found = []
    step = timedelta(minutes=30)
    at = datetime(year, 1, 1, tzinfo=UTC)
    offset = at.astimezone(tz).utcoffset()
    while at.year == year:
        nxt = at + step
        if nxt.astimezone(tz).utcoffset() != offset:
            low = at
            while low + timedelta(minutes=1) < nxt:
                low += timedelta(minutes=1)
                if low.astimezone(tz).utcoffset() != offset:
                    break
            found.append(low if low.astimezone(tz).utcoffset() != offset else nxt)
            offset = nxt.astimezone(tz).utcoffset()
        at = nxt
    return tuple(found) or (datetime(year, 6, 15, 12, tzinfo=UTC),)


def ours(expr: str, tz: ZoneInfo, start: datetime, end: datetime) -> list[float]:
    return [
        t.timestamp()
        for t in itertools.islice(fire_times(expr, tz=tz, after=start, until=end), MAX_TICKS)
    ]


def theirs(expr: str, tz: ZoneInfo, start: datetime, end: datetime) -> list[float]:
    out: list[float] = []
    # cronsim may return a fixed-time tick before a start inside a repeated hour: filter.
    for t in CronSim(expr, start.astimezone(tz)):
        ts = t.timestamp()
        if ts > end.timestamp() or len(out) >= MAX_TICKS:
            break
        if ts > start.timestamp():
            out.append(ts)
    return out


def brute_force(expr: str, tz: ZoneInfo, start: datetime, end: datetime) -> list[float]:
    """Every real instant in (start, end] whose wall time matches, found by scanning UTC.

    The fields and the day rule come from cronsim's parser, so nothing here
    shares code with shared.cron. Only valid for schedules without the
    fixed-time DST rule.
    """
    sim = CronSim(expr, start.astimezone(tz))
    step = 1 if len(expr.split()) == 6 else 60
    at = int(start.timestamp()) // step * step + step
    out: list[float] = []
    while at <= end.timestamp() and len(out) < MAX_TICKS:
        local = datetime.fromtimestamp(at, tz)
        if (
            local.second in sim.seconds
            and local.minute in sim.minutes
            and local.hour in sim.hours
            and local.month in sim.months
            and sim.match_day(local.date())
        ):
            out.append(float(at))
        at += step
    return out


def reference(expr: str, zone: str, start: datetime, end: datetime) -> list[float]:
    """cronsim, except where it is known to be wrong (see ``brute_force``'s callers)."""
    tz = ZoneInfo(zone)
    if zone in HALF_HOUR_DST and not parse(expr).is_fixed_time:
        # cronsim jumps whole minutes through UTC and steps over the second
        # occurrence of a wall time in Lord Howe's repeated half hour
        # ("30 * * * *" fires at 01:30+11:00 only, not again at 01:30+10:30).
        return brute_force(expr, tz, start, end)
    return theirs(expr, tz, start, end)


def comparable(expr: str, zone: str) -> bool:
    record = parse(expr)
    return not record.has_seconds or not record.is_fixed_time or zone in NO_DST


def assert_same(expr: str, zone: str, start: datetime, end: datetime) -> None:
    tz = ZoneInfo(zone)
    if zone in HALF_HOUR_DST and not parse(expr).is_fixed_time:
        # Brute force scans every minute (second): keep its window short.
        span = timedelta(hours=6) if parse(expr).has_seconds else timedelta(days=1)
        end = min(end, start + span)
    mine = ours(expr, tz, start, end)
    other = reference(expr, zone, start, end)
    show = [datetime.fromtimestamp(t, tz).isoformat() for t in mine[:8]]
    assert mine == other, f"{expr!r} in {zone} from {start.isoformat()}: ours starts {show}"


CURATED = [
    "30 2 * * *",
    "0 2 * * *",
    "59 1 * * *",
    "0,15,30,45 1,2,3 * * *",
    "15 2,3 * * *",
    "30 1 * * *",
    "0 1 * * *",
    "45 0-3 * * *",
    "*/15 * * * *",
    "30 * * * *",
    "* 2 * * *",
    "*/7 1-3 * * *",
    "0 */2 * * *",
    "5 4 * * sun",
    "0 0 * * *",
    "0 3 * * *",
    "0 0 1 * *",
    "0 0 * * 0",
    "0 9-17 * * mon-fri",
    "10 2 * mar,apr,oct,nov *",
    "0 2 29 2 *",
    "0 0 13 * fri",
    "0 0 */2 * mon",
    "1-50/7 2 * * *",
    "5/20 1,2 * * *",
    "0 12 * jan-dec/2 *",
    "* * * * *",
    "0 30 2 * * *",
    "*/20 * 2 * * *",
    "15 */10 * * * *",
]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("expr", CURATED)
def test_curated_expressions_match_cronsim_across_both_transitions(expr: str, zone: str) -> None:
    """Curated schedules fire at exactly cronsim's instants over each DST change of 2026."""
    if not comparable(expr, zone):
        pytest.skip("cronsim has no DST rule for 6-field fixed-time schedules")
    for change in transitions(zone):
        # Start a few hours before the change so dense schedules reach it within MAX_TICKS.
        for lead in (timedelta(hours=3), timedelta(hours=30)):
            start = change - lead
            assert_same(expr, zone, start, change + timedelta(days=2))


def _field(low: int, high: int, names: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    value = st.integers(low, high).map(str)
    if names:
        value = value | st.sampled_from(names)
    step = st.integers(1, high - low + 1).map(str)

    @st.composite
    def term(draw: st.DrawFn) -> str:
        kind = draw(
            st.sampled_from(["star", "star_step", "value", "range", "range_step", "start_step"])
        )
        if kind == "star":
            return "*"
        if kind == "star_step":
            return f"*/{draw(step)}"
        if kind == "value":
            return draw(value)
        if kind == "start_step":
            return f"{draw(st.integers(low, high))}/{draw(step)}"
        a, b = sorted((draw(st.integers(low, high)), draw(st.integers(low, high))))
        text = f"{a}-{b}"
        if kind == "range_step" and a < b:
            # Not "a-a/k": cronsim reads a one-value range with a step as "a-max/k".
            return f"{text}/{draw(step)}"
        return text

    return st.lists(term(), min_size=1, max_size=3).map(",".join)


MINUTE = _field(0, 59)
HOUR = _field(0, 23)
DOM = _field(1, 31)
MONTH = _field(1, 12, ("jan", "mar", "Apr", "OCT", "nov"))
DOW = _field(0, 7, ("sun", "mon", "Fri", "SAT"))
# Hours near the changes of the chosen zones, so generated schedules hit the gaps and folds.
NEAR_CHANGE_HOUR = st.sampled_from(["0", "1", "2", "3", "1,2", "1-3", "2/1", "0-2/2"])
FIVE_FIELDS = st.tuples(
    MINUTE, NEAR_CHANGE_HOUR | HOUR, DOM | st.just("*"), MONTH | st.just("*"), DOW | st.just("*")
).map(" ".join)


@settings(max_examples=80, deadline=None)
@given(
    expr=FIVE_FIELDS,
    zone=st.sampled_from(ZONES),
    which=st.integers(0, 1),
    lead_minutes=st.integers(0, 36 * 60),
)
def test_generated_expressions_match_cronsim(
    expr: str, zone: str, which: int, lead_minutes: int
) -> None:
    """Generated 5-field schedules fire at exactly cronsim's instants near a DST change."""
    try:
        parse(expr)
    except InvalidSchedule:
        return  # a day-of-month no chosen month has; cronsim rejects it too (checked below)
    changes = transitions(zone)
    change = changes[which % len(changes)]
    start = change - timedelta(minutes=lead_minutes)
    assert_same(expr, zone, start, change + timedelta(days=3))


@settings(max_examples=30, deadline=None)
@given(
    seconds=_field(0, 59),
    rest=FIVE_FIELDS,
    zone=st.sampled_from(ZONES),
    which=st.integers(0, 1),
    lead_minutes=st.integers(0, 6 * 60),
)
def test_generated_six_field_expressions_match_cronsim(
    seconds: str, rest: str, zone: str, which: int, lead_minutes: int
) -> None:
    """Generated 6-field schedules match cronsim wherever cronsim's DST handling applies."""
    expr = f"{seconds} {rest}"
    try:
        parse(expr)
    except InvalidSchedule:
        return
    if not comparable(expr, zone):
        return
    changes = transitions(zone)
    start = changes[which % len(changes)] - timedelta(minutes=lead_minutes)
    assert_same(expr, zone, start, start + timedelta(days=2))


def test_day_of_month_that_never_occurs_is_rejected_like_cronsim() -> None:
    """A day-of-month no chosen month has is refused by both evaluators."""
    with pytest.raises(InvalidSchedule):
        parse("0 0 30 2 *")
    with pytest.raises(Exception, match="Bad day-of-month"):
        CronSim("0 0 30 2 *", datetime(2026, 1, 1, tzinfo=UTC))


ALL_ZONES = sorted(available_timezones())
SAMPLE_FIXED = ("0 0 * * *", "30 0 * * *", "0 2 * * *", "30 23 * * *", "0,30 0-3 * * *")
SAMPLE_WILDCARD = ("*/30 * * * *", "15 * * * *", "* 0 * * *")


@pytest.mark.slow
@pytest.mark.timeout(900)  # about a minute per year on 2 cores
@pytest.mark.parametrize("year", [2026, 2011, 1995])
def test_every_zone_matches_the_references_around_its_changes(year: int) -> None:
    """Every IANA zone (midnight changes, 2 h shifts, Samoa's lost day) matches the references."""
    for zone in ALL_ZONES:
        tz = ZoneInfo(zone)
        for change in transitions(zone, year)[:4]:
            start, end = change - timedelta(hours=30), change + timedelta(hours=30)
            for expr in SAMPLE_FIXED:
                assert ours(expr, tz, start, end) == theirs(expr, tz, start, end), (zone, expr)
            for expr in SAMPLE_WILDCARD:
                assert ours(expr, tz, start, end) == brute_force(expr, tz, start, end), (zone, expr)


@settings(max_examples=60, deadline=None)
@given(
    expr=FIVE_FIELDS,
    zone=st.sampled_from(ALL_ZONES),
    year=st.integers(1990, 2030),
    which=st.integers(0, 3),
    lead_minutes=st.integers(0, 30 * 60),
)
def test_fire_times_are_increasing_and_each_is_a_match_or_a_gap_end(
    expr: str, zone: str, year: int, which: int, lead_minutes: int
) -> None:
    """In any zone and year, ticks increase strictly, stay in the window, and match the fields
    (or, for fixed-time schedules, sit where a gap ends)."""
    try:
        record = parse(expr)
    except InvalidSchedule:
        return
    tz = ZoneInfo(zone)
    changes = transitions(zone, year)
    start = changes[which % len(changes)] - timedelta(minutes=lead_minutes)
    end = start + timedelta(days=2)
    got = list(itertools.islice(fire_times(record, tz=tz, after=start, until=end), MAX_TICKS))
    stamps = [t.timestamp() for t in got]
    assert stamps == sorted(set(stamps))
    assert all(start.timestamp() < s <= end.timestamp() for s in stamps)
    for tick in got:
        assert tick.tzinfo is tz
        matches = (
            tick.minute in record.minutes
            and tick.hour in record.hours
            and record.matches_day(tick.date())
        )
        before = datetime.fromtimestamp(tick.timestamp() - 1, tz)
        # A gap's end is an instant where the offset changes; the second before has another.
        at_gap_end = record.is_fixed_time and before.utcoffset() != tick.utcoffset()
        assert matches or at_gap_end, tick.isoformat()
