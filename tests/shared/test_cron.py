"""shared.cron: strict parsing, exact error messages, description, `at`, and the DST rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.cron import (
    InvalidTimezone,
    describe,
    fire_times,
    is_fixed_time,
    load_zone,
    next_fire_times,
    parse,
    parse_at,
)
from shared.errors import InvalidSchedule
from tests.shared.test_cron_vs_cronsim import FIVE_FIELDS

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
UTC_ZONE = ZoneInfo("UTC")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def iso(times: list[datetime]) -> list[str]:
    return [t.isoformat() for t in times]


# ---------------------------------------------------------------- parsing


def test_five_fields_parse_into_value_sets() -> None:
    """A 5-field expression gives the listed values per field and second 0."""
    record = parse("5,10 1-3 */10 jan-mar mon-fri")
    assert record.seconds == {0}
    assert record.minutes == {5, 10}
    assert record.hours == {1, 2, 3}
    assert record.days_of_month == {1, 11, 21, 31}
    assert record.months == {1, 2, 3}
    assert record.days_of_week == {1, 2, 3, 4, 5}
    assert not record.has_seconds


def test_six_fields_read_the_first_as_seconds() -> None:
    """With six fields the first is seconds, as Quartz and robfig/cron read it."""
    record = parse("*/15 30 2 * * *")
    assert record.has_seconds
    assert record.seconds == {0, 15, 30, 45}
    assert record.minutes == {30}
    assert record.hours == {2}


def test_names_are_case_insensitive() -> None:
    """Month and day names are accepted in any case."""
    assert parse("0 0 * JaN,DEC Sun").months == {1, 12}
    assert parse("0 0 * * FRI-sat").days_of_week == {5, 6}


def test_day_of_week_seven_is_sunday() -> None:
    """Day-of-week 7 means Sunday, as 0 does."""
    assert parse("0 0 * * 7").days_of_week == {0}
    assert parse("0 0 * * 5-7").days_of_week == {5, 6, 0}


def test_value_with_step_runs_to_the_end_of_the_field() -> None:
    """'N/step' means 'N-max/step', as cronsim, croniter and robfig/cron read it."""
    assert parse("5/20 * * * *").minutes == {5, 25, 45}


def test_range_with_step_stays_inside_the_range() -> None:
    """'a-b/step' takes every step-th value from a up to b."""
    assert parse("1-10/3 * * * *").minutes == {1, 4, 7, 10}


@pytest.mark.parametrize(
    ("macro", "fields"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_macro_fires_like_its_expansion(macro: str, fields: str) -> None:
    """Each macro fires exactly when its five-field expansion does."""
    after = datetime(2026, 1, 1, 12, tzinfo=LONDON)
    assert parse(macro).fields == fields
    assert next_fire_times(macro, tz=LONDON, after=after, n=5) == next_fire_times(
        fields, tz=LONDON, after=after, n=5
    )


def test_reboot_has_no_fire_times() -> None:
    """@reboot is once per agent start: it yields no scheduled times."""
    record = parse("@reboot")
    assert record.is_reboot
    assert not record.is_fixed_time
    assert next_fire_times("@reboot", tz=UTC_ZONE, after=utc(2026, 1, 1), n=3) == []


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("61 * * * *", "minute field '61' is out of range 0-59"),
        ("* 24 * * *", "hour field '24' is out of range 0-23"),
        ("* * 0 * *", "day-of-month field '0' is out of range 1-31"),
        ("* * * 13 *", "month field '13' is out of range 1-12"),
        ("* * * * 8", "day-of-week field '8' is out of range 0-7"),
        ("60 * * * * *", "second field '60' is out of range 0-59"),
        ("* * * * * * *", "expected 5 or 6 fields, got 7"),
        ("* * * *", "expected 5 or 6 fields, got 4"),
        ("", "expected 5 or 6 fields, got 0"),
        (
            "0 0 * jam *",
            "unknown month name 'jam' (valid: jan feb mar apr may jun jul aug sep oct nov dec)",
        ),
        ("0 0 * * mox", "unknown day name 'mox' (valid: sun mon tue wed thu fri sat)"),
        (
            "@hourlyy",
            "unknown macro '@hourlyy' (valid: @yearly @annually @monthly @weekly @daily"
            " @midnight @hourly @reboot)",
        ),
        ("*/0 * * * *", "minute field step '0' is out of range 1-60"),
        ("*/61 * * * *", "minute field step '61' is out of range 1-60"),
        ("0 5-2 * * *", "hour field range '5-2' runs backwards (write low-high)"),
        (
            "0 0 * * sat-sun",
            "day-of-week field range 'sat-sun' runs backwards"
            " (write low-high; Sunday is 0 or 7: sat,sun or 6-7)",
        ),
        ("1,,2 * * * *", "minute field '1,,2' has an empty list item"),
        (
            "0 0 L * *",
            "day-of-month field 'L' is not a valid value (valid: 1-31, *, a-b, */n, a,b)",
        ),
        (
            "0 0 ? * *",
            "day-of-month field '?' is not a valid value (valid: 1-31, *, a-b, */n, a,b)",
        ),
        (
            "0 0 * * 5#2",
            "day-of-week field '5#2' is not a valid value (valid: 0-7, sun-sat, *, a-b, */n, a,b)",
        ),
        ("jan * * * *", "minute field 'jan' is not a valid value (valid: 0-59, *, a-b, */n, a,b)"),
        (
            "0 0 30 feb *",
            "day-of-month field '30' never occurs in month field 'feb'"
            " (those months have at most 29 days)",
        ),
        ("1- * * * *", "minute field '1-' is not a valid value (valid: 0-59, *, a-b, */n, a,b)"),
        ("-1 * * * *", "minute field '-1' is not a valid value (valid: 0-59, *, a-b, */n, a,b)"),
    ],
)
def test_bad_expression_names_field_value_and_what_is_valid(expr: str, why: str) -> None:
    """A bad schedule raises InvalidSchedule with the exact reason."""
    with pytest.raises(InvalidSchedule) as caught:
        parse(expr)
    assert caught.value.why == why
    assert caught.value.message == f"{expr!r}: {why}"


def test_day_31_with_day_of_week_is_or_and_therefore_valid() -> None:
    """Day-of-month and day-of-week both restricted are OR-ed, so day 30 in February is fine."""
    assert parse("0 0 30 2 mon").days_of_week == {1}


def test_is_fixed_time_follows_debian_star_rule() -> None:
    """Fixed time means neither minute nor hour starts with '*'; ranges still count as fixed."""
    assert is_fixed_time("30 2 * * *")
    assert is_fixed_time("0-59 0-23 * * *")
    assert is_fixed_time("@daily")
    assert not is_fixed_time("*/5 2 * * *")
    assert not is_fixed_time("30 * * * *")
    assert not is_fixed_time("@hourly")


# ---------------------------------------------------------------- describing


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ("0 2 * * *", "At 02:00"),
        ("*/15 * * * *", "Every 15 minutes"),
        ("30 0 2 * * *", "At 02:00:30"),
        ("0 9 * * mon-fri", "At 09:00, Monday through Friday"),
        ("@reboot", "At every agent start"),
        ("@daily", "At 00:00"),
        ("0 0 13 * fri", "At 00:00, on day 13 of the month, or on Friday"),
        ("0 0 */2 * mon", "At 00:00, every 2 days, and on Monday"),
    ],
)
def test_describe_gives_human_text(expr: str, text: str) -> None:
    """describe() gives 24-hour English text, Debian's AND/OR day rule included."""
    assert describe(expr) == text


def test_describe_rejects_bad_expression() -> None:
    """describe() validates like parse()."""
    with pytest.raises(InvalidSchedule, match="minute field '99'"):
        describe("99 * * * *")


# ---------------------------------------------------------------- zones and `at`


def test_load_zone_names_the_unknown_zone() -> None:
    """An unknown zone raises InvalidTimezone naming it."""
    with pytest.raises(InvalidTimezone, match="unknown time zone 'Mars/Base'"):
        load_zone("Mars/Base")
    with pytest.raises(InvalidTimezone):
        load_zone("../../etc/passwd")
    assert load_zone("Asia/Kolkata").key == "Asia/Kolkata"


def test_parse_at_naive_time_is_in_the_job_zone() -> None:
    """An `at` time without offset is wall time in the job's zone."""
    when = parse_at("2026-07-01T09:30", LONDON)
    assert when.isoformat() == "2026-07-01T09:30:00+01:00"


def test_parse_at_with_offset_is_converted_to_the_job_zone() -> None:
    """An `at` time with an offset or Z keeps its instant, shown in the job's zone."""
    assert parse_at("2026-07-01T08:30:00Z", LONDON).isoformat() == "2026-07-01T09:30:00+01:00"
    assert parse_at("2026-07-01 10:30+02:00", LONDON).isoformat() == "2026-07-01T09:30:00+01:00"


def test_parse_at_in_gap_means_end_of_gap() -> None:
    """A naive `at` time in a spring-forward gap means the end of the gap."""
    assert parse_at("2026-03-08T02:30", NY).isoformat() == "2026-03-08T03:00:00-04:00"


def test_parse_at_in_repeated_hour_means_first_occurrence() -> None:
    """A naive `at` time in a repeated hour means its first occurrence."""
    assert parse_at("2026-11-01T01:30", NY).isoformat() == "2026-11-01T01:30:00-04:00"


@pytest.mark.parametrize("text", ["tomorrow", "2026-13-01T00:00", "", "12:00"])
def test_parse_at_rejects_non_iso_text(text: str) -> None:
    """Text that is not an ISO 8601 date-time raises InvalidSchedule with an example."""
    with pytest.raises(InvalidSchedule, match="not an ISO 8601 time"):
        parse_at(text, NY)


# ---------------------------------------------------------------- fire times


def test_fire_times_are_strictly_after_and_up_to_until_inclusive() -> None:
    """The window is (after, until]: a tick at `after` is excluded, one at `until` included."""
    after = datetime(2026, 5, 1, 10, 0, tzinfo=UTC_ZONE)
    until = datetime(2026, 5, 1, 10, 3, tzinfo=UTC_ZONE)
    got = list(fire_times("* * * * *", tz=UTC_ZONE, after=after, until=until))
    assert iso(got) == [
        "2026-05-01T10:01:00+00:00",
        "2026-05-01T10:02:00+00:00",
        "2026-05-01T10:03:00+00:00",
    ]


def test_after_in_another_zone_is_the_same_instant() -> None:
    """`after` may be in any zone; results are in the job's zone."""
    after = utc(2026, 6, 1, 7, 59)
    got = next_fire_times("0 9 * * *", tz=LONDON, after=after, n=1)
    assert iso(got) == ["2026-06-01T09:00:00+01:00"]
    assert got[0].tzinfo is LONDON


def test_naive_after_is_refused() -> None:
    """A naive `after` is our own misuse and raises ValueError."""
    with pytest.raises(ValueError, match="aware"):
        next_fire_times("* * * * *", tz=UTC_ZONE, after=datetime(2026, 1, 1), n=1)


def test_february_29_fires_only_in_leap_years() -> None:
    """'0 0 29 2 *' finds the next leap day, skipping 2100 (not a leap year)."""
    got = next_fire_times("0 0 29 2 *", tz=UTC_ZONE, after=utc(2097, 1, 1), n=2)
    assert iso(got) == ["2104-02-29T00:00:00+00:00", "2108-02-29T00:00:00+00:00"]


def test_day_fields_both_restricted_fire_on_either() -> None:
    """Day-of-month and day-of-week both restricted: either matching day fires (Debian)."""
    got = next_fire_times("0 0 13 * fri", tz=UTC_ZONE, after=utc(2026, 2, 1), n=3)
    assert iso(got) == [
        "2026-02-06T00:00:00+00:00",
        "2026-02-13T00:00:00+00:00",
        "2026-02-20T00:00:00+00:00",
    ]


def test_day_of_week_with_star_step_day_of_month_needs_both() -> None:
    """A day field starting with '*' makes both day fields required (Debian)."""
    got = next_fire_times("0 0 */2 * mon", tz=UTC_ZONE, after=utc(2026, 2, 1), n=3)
    # Mondays of February 2026 are 2, 9, 16, 23; odd days are 1, 3, 5 ...; March 9 is Monday+odd.
    assert iso(got) == [
        "2026-02-09T00:00:00+00:00",
        "2026-02-23T00:00:00+00:00",
        "2026-03-09T00:00:00+00:00",
    ]


def test_seconds_field_fires_within_the_minute() -> None:
    """A 6-field schedule fires at the listed seconds."""
    got = next_fire_times("10,40 * * * * *", tz=UTC_ZONE, after=utc(2026, 1, 1), n=3)
    assert iso(got) == [
        "2026-01-01T00:00:10+00:00",
        "2026-01-01T00:00:40+00:00",
        "2026-01-01T00:01:10+00:00",
    ]


def test_short_window_is_cheap_after_a_long_gap() -> None:
    """A per-second schedule over ten seconds yields exactly ten ticks."""
    after = utc(2026, 1, 1, 12)
    got = list(
        fire_times("* * * * * *", tz=UTC_ZONE, after=after, until=after + timedelta(seconds=10))
    )
    assert len(got) == 10


# ---------------------------------------------------------------- daylight saving (DESIGN.md)


def test_fixed_time_in_spring_gap_runs_once_right_after_the_gap() -> None:
    """'30 2 * * *' on New York's spring-forward day runs once at 03:00 EDT."""
    got = next_fire_times("30 2 * * *", tz=NY, after=datetime(2026, 3, 7, 12, tzinfo=NY), n=2)
    assert iso(got) == ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]


def test_several_fixed_times_in_the_gap_run_once_together() -> None:
    """Two fixed times in the gap plus 03:00 itself make one run at 03:00."""
    got = next_fire_times("0,30 2,3 * * *", tz=NY, after=datetime(2026, 3, 8, 1, tzinfo=NY), n=3)
    assert iso(got) == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T03:30:00-04:00",
        "2026-03-09T02:00:00-04:00",
    ]


def test_fixed_time_in_repeated_hour_runs_once_at_first_occurrence() -> None:
    """'30 1 * * *' on New York's fall-back day runs once, at 01:30 EDT."""
    got = next_fire_times("30 1 * * *", tz=NY, after=datetime(2026, 10, 31, 12, tzinfo=NY), n=2)
    assert iso(got) == ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]


def test_fixed_time_does_not_run_again_when_started_inside_repeated_hour() -> None:
    """Starting after the first 01:30 (during the second 01:00 hour) skips to the next day."""
    after = datetime(2026, 11, 1, 1, 10, fold=1, tzinfo=NY)  # 01:10 EST, after 01:30 EDT
    got = next_fire_times("30 1 * * *", tz=NY, after=after, n=1)
    assert iso(got) == ["2026-11-02T01:30:00-05:00"]


def test_wildcard_job_runs_at_every_real_instant_in_repeated_hour() -> None:
    """'*/30 * * * *' runs at 01:00 and 01:30 twice each on fall-back day."""
    got = list(
        fire_times(
            "*/30 * * * *",
            tz=NY,
            after=datetime(2026, 11, 1, 0, 45, tzinfo=NY),
            until=datetime(2026, 11, 1, 2, 0, tzinfo=NY),
        )
    )
    assert iso(got) == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]
    assert [t.fold for t in got] == [0, 0, 1, 1, 0]


def test_wildcard_job_does_not_run_inside_the_gap() -> None:
    """'*/30 * * * *' skips 02:00 and 02:30 on spring-forward day: they never happen."""
    got = list(
        fire_times(
            "*/30 * * * *",
            tz=NY,
            after=datetime(2026, 3, 8, 1, 0, tzinfo=NY),
            until=datetime(2026, 3, 8, 3, 30, tzinfo=NY),
        )
    )
    assert iso(got) == [
        "2026-03-08T01:30:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T03:30:00-04:00",
    ]


def test_half_hour_dst_fixed_time_in_gap_runs_at_gap_end() -> None:
    """Lord Howe springs forward 30 minutes: 02:15 runs once at 02:30."""
    got = next_fire_times(
        "15 2 * * *", tz=LORD_HOWE, after=datetime(2026, 10, 3, 12, tzinfo=LORD_HOWE), n=2
    )
    assert iso(got) == ["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"]


def test_half_hour_dst_wildcard_runs_twice_in_repeated_half_hour() -> None:
    """Lord Howe repeats 01:30-02:00: '30 * * * *' fires at 01:30 in both offsets.

    Pins a case where cronsim 2.8 is wrong: it fires only the first 01:30.
    """
    got = list(
        fire_times(
            "30 * * * *",
            tz=LORD_HOWE,
            after=datetime(2026, 4, 5, 1, 0, tzinfo=LORD_HOWE),
            until=datetime(2026, 4, 5, 2, 45, tzinfo=LORD_HOWE),
        )
    )
    assert iso(got) == [
        "2026-04-05T01:30:00+11:00",
        "2026-04-05T01:30:00+10:30",
        "2026-04-05T02:30:00+10:30",
    ]


def test_six_field_fixed_time_follows_the_same_dst_rule() -> None:
    """'0 30 2 * * *' (with seconds) also runs once at the end of the gap."""
    got = next_fire_times("0 30 2 * * *", tz=NY, after=datetime(2026, 3, 7, 12, tzinfo=NY), n=1)
    assert iso(got) == ["2026-03-08T03:00:00-04:00"]


def test_daily_job_in_london_runs_once_on_both_change_days() -> None:
    """'30 1 * * *' in London runs exactly once on each change day of 2026."""
    for day in (datetime(2026, 3, 29, tzinfo=LONDON), datetime(2026, 10, 25, tzinfo=LONDON)):
        got = list(fire_times("30 1 * * *", tz=LONDON, after=day, until=day + timedelta(days=1)))
        assert len(got) == 1


def test_start_just_before_the_repeated_hour_sees_its_second_pass() -> None:
    """From 01:50 EDT the next '*/20' tick is 01:00 EST (wall time goes back), not 02:00."""
    after = datetime(2026, 11, 1, 1, 50, tzinfo=NY)
    got = next_fire_times("*/20 * * * *", tz=NY, after=after, n=2)
    assert iso(got) == ["2026-11-01T01:00:00-05:00", "2026-11-01T01:20:00-05:00"]


def test_parse_at_refuses_years_outside_the_calendar_we_schedule() -> None:
    """An `at` year past 9998 (or before 1900) is refused, not a crash."""
    with pytest.raises(InvalidSchedule, match="year 9999 is out of range 1900-9998"):
        parse_at("9999-12-31T23:00", NY)


def test_fire_times_stop_at_the_end_of_the_calendar() -> None:
    """Near datetime's last year the iterator ends instead of overflowing."""
    after = datetime(9998, 12, 31, 12, tzinfo=NY)
    assert next_fire_times("@daily", tz=NY, after=after, n=3) == []
    assert next_fire_times("@daily", tz=NY, after=datetime(9999, 6, 1, tzinfo=UTC), n=3) == []
    last = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    assert next_fire_times("@daily", tz=ZoneInfo("Pacific/Kiritimati"), after=last, n=1) == []


@settings(max_examples=60, deadline=None)
@given(
    expr=FIVE_FIELDS | st.tuples(st.sampled_from(["0", "*/10", "5,35"]), FIVE_FIELDS).map(" ".join)
)
def test_describe_never_fails_on_a_valid_expression(expr: str) -> None:
    """describe() gives text for every valid schedule, even ones cron-descriptor cannot read."""
    try:
        parse(expr)
    except InvalidSchedule:
        return
    assert describe(expr).strip()


def test_describe_falls_back_for_fields_cron_descriptor_rejects() -> None:
    """'1,*' style fields (valid cron) still get a description."""
    assert describe("*,* 2/1 * * *,*") == "Every minute, between 02:00 and 23:59"
