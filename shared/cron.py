"""Cron schedules: parse strictly, describe, and list fire times with Debian's DST rule.

Call ``parse`` where a schedule enters the system (job load, ``squ apply``,
``squ-agentd next``) so a bad one is refused with the field, the value and what
would be valid. The scheduler calls ``fire_times(expr, tz=..., after=last,
until=now)`` (through ``shared.misfire.plan_ticks``) to learn which ticks are
due; the console and ``squ-agentd next`` call ``next_fire_times`` to preview.

Grammar (Debian cron, plus a leading seconds field as Quartz, robfig/cron and
Dkron read six fields)::

    [second] minute hour day-of-month month day-of-week
    field := term ("," term)*
    term  := "*" ["/" step] | value ["-" value] ["/" step]

``value`` is a number, or a name in the month (jan..dec) and day-of-week
(sun..sat) fields, case-insensitive. Day-of-week 7 is Sunday, as 0 is.
``N/step`` means ``N-max/step`` (as cronsim, croniter and robfig read it).
Macros: @yearly @annually @monthly @weekly @daily @midnight @hourly, and
@reboot (once per agent start; it has no fire times). Quartz extras (``?``,
``L``, ``W``, ``#``) and croniter's extras are refused: cron does not have them.

Day matching follows Debian cron: if day-of-month or day-of-week starts with
``*`` both must match, otherwise either may.

Daylight saving (DESIGN.md, Debian cron): a *fixed-time* schedule (neither
minute nor hour starts with ``*``) whose wall time falls in a spring-forward
gap fires once, at the end of the gap; in a repeated fall-back hour it fires
once, at the first occurrence. Every other schedule fires at each real instant
whose wall time matches: never inside a gap, twice in a repeated hour.

Fire times are aware datetimes in the job's zone with ``fold`` set. Compare
them through ``.timestamp()`` or after ``.astimezone(UTC)``: Python compares two
datetimes that share a tzinfo by wall time and ignores ``fold``.
"""

from __future__ import annotations

import calendar
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.errors import InvalidSchedule, SquError

__all__ = [
    "MACROS",
    "CronExpr",
    "InvalidTimezone",
    "describe",
    "fire_times",
    "is_fixed_time",
    "load_zone",
    "next_fire_times",
    "parse",
    "parse_at",
]

MACROS: dict[str, str | None] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
    "@reboot": None,
}

# Fire times and `at` times stay inside these years, away from datetime's limits.
_MIN_YEAR = 1900
_MAX_YEAR = 9998

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True, slots=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # index + name_base is the value
    name_base: int = 0
    name_kind: str = ""


_SECOND = _FieldSpec("second", 0, 59)
_MINUTE = _FieldSpec("minute", 0, 59)
_HOUR = _FieldSpec("hour", 0, 23)
_DOM = _FieldSpec("day-of-month", 1, 31)
_MONTH = _FieldSpec("month", 1, 12, _MONTH_NAMES, 1, "month")
_DOW = _FieldSpec("day-of-week", 0, 7, _DAY_NAMES, 0, "day")


class InvalidTimezone(SquError):
    """A time zone name that is not in the IANA database on this machine."""

    code = "invalid_timezone"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"unknown time zone {name!r} (use an IANA name such as Europe/London or UTC)",
            timezone=name,
        )
        self.name = name


@dataclass(frozen=True, slots=True, kw_only=True)
class CronExpr:
    """A validated schedule. Build it with ``parse``; every field set is non-empty.

    ``days_of_week`` uses 0 = Sunday .. 6 = Saturday (7 is folded into 0).
    ``minute_star``/``hour_star``/``dom_star``/``dow_star`` record whether the
    field as written starts with ``*``, which is what Debian cron keys its DST
    and day-matching rules on.
    """

    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]
    has_seconds: bool = False
    macro: str | None = None
    is_reboot: bool = False
    minute_star: bool = False
    hour_star: bool = False
    dom_star: bool = False
    dow_star: bool = False

    @property
    def is_fixed_time(self) -> bool:
        """Whether Debian's DST rule for fixed-time jobs applies (no ``*`` in minute or hour)."""
        return not self.is_reboot and not self.minute_star and not self.hour_star

    @property
    def fields(self) -> str:
        """The expression as cron fields (a macro expanded); ``@reboot`` stays as it is."""
        if self.macro is not None:
            return MACROS[self.macro] or self.macro
        return " ".join(self.text.split())

    def matches_day(self, day: date) -> bool:
        """Whether ``day`` is a firing day (Debian: AND if either day field starts with ``*``)."""
        if day.month not in self.months:
            return False
        dom_ok = day.day in self.days_of_month
        dow_ok = (day.isoweekday() % 7) in self.days_of_week
        if self.dom_star or self.dow_star:
            return dom_ok and dow_ok
        return dom_ok or dow_ok


# ---------------------------------------------------------------- parsing


def parse(expr: str) -> CronExpr:
    """Validate ``expr`` and return its record; raise ``InvalidSchedule`` naming what is wrong.

    Call where a schedule enters the system; the record is what ``fire_times``
    works from, so an invalid schedule never reaches the scheduler.
    """
    if not isinstance(expr, str):
        raise InvalidSchedule(str(expr), f"a schedule must be text, got {type(expr).__name__}")
    text = expr.strip()
    if text.startswith("@"):
        if text not in MACROS:
            valid = " ".join(MACROS)
            raise InvalidSchedule(expr, f"unknown macro {text!r} (valid: {valid})")
        fields = MACROS[text]
        if fields is None:
            empty: frozenset[int] = frozenset()
            return CronExpr(
                text=text,
                seconds=empty,
                minutes=empty,
                hours=empty,
                days_of_month=empty,
                months=empty,
                days_of_week=empty,
                macro=text,
                is_reboot=True,
            )
        return _parse_fields(expr, fields.split(), macro=text)
    parts = text.split()
    if len(parts) not in (5, 6):
        raise InvalidSchedule(expr, f"expected 5 or 6 fields, got {len(parts)}")
    return _parse_fields(expr, parts, macro=None)


def _parse_fields(expr: str, parts: list[str], *, macro: str | None) -> CronExpr:
    has_seconds = len(parts) == 6
    if not has_seconds:
        parts = ["0", *parts]
    sec, mins, hrs, dom, mon, dow = parts
    days_of_week = frozenset(d % 7 for d in _parse_field(expr, dow, _DOW))
    record = CronExpr(
        text=macro or " ".join(expr.split()),
        seconds=_parse_field(expr, sec, _SECOND),
        minutes=_parse_field(expr, mins, _MINUTE),
        hours=_parse_field(expr, hrs, _HOUR),
        days_of_month=_parse_field(expr, dom, _DOM),
        months=_parse_field(expr, mon, _MONTH),
        days_of_week=days_of_week,
        has_seconds=has_seconds,
        macro=macro,
        minute_star=mins.startswith("*"),
        hour_star=hrs.startswith("*"),
        dom_star=dom.startswith("*"),
        dow_star=dow.startswith("*"),
    )
    if record.dom_star or record.dow_star:
        # Both day fields must match, so a day-of-month no chosen month has never fires.
        longest = max(_month_days(m) for m in record.months)
        if min(record.days_of_month) > longest:
            raise InvalidSchedule(
                expr,
                f"day-of-month field {dom!r} never occurs in month field {mon!r}"
                f" (those months have at most {longest} days)",
            )
    return record


def _month_days(month: int) -> int:
    return 29 if month == 2 else calendar.monthrange(2001, month)[1]


def _parse_field(expr: str, text: str, spec: _FieldSpec) -> frozenset[int]:
    values: set[int] = set()
    for term in text.split(","):
        if not term:
            raise InvalidSchedule(expr, f"{spec.name} field {text!r} has an empty list item")
        values.update(_parse_term(expr, term, spec))
    return frozenset(values)


def _parse_term(expr: str, term: str, spec: _FieldSpec) -> Iterable[int]:
    body, slash, step_text = term.partition("/")
    step = 1
    if slash:
        span = spec.high - spec.low + 1
        if not step_text.isdigit() or not 1 <= int(step_text) <= span:
            raise InvalidSchedule(
                expr, f"{spec.name} field step {step_text!r} is out of range 1-{span}"
            )
        step = int(step_text)
    if body == "*":
        return range(spec.low, spec.high + 1, step)
    first, dash, last = body.partition("-")
    if not first or (dash and not last):
        raise _not_a_value(expr, term, spec)
    start = _parse_value(expr, first, spec)
    if not dash:
        # "N/step" reads as "N-max/step"; a bare "N" is just N.
        end = spec.high if slash else start
    else:
        end = _parse_value(expr, last, spec)
        if end < start:
            # Vixie cron silently never fires "sat-sun"; say what to write instead.
            hint = "; Sunday is 0 or 7: sat,sun or 6-7" if spec is _DOW else ""
            raise InvalidSchedule(
                expr, f"{spec.name} field range {body!r} runs backwards (write low-high{hint})"
            )
    return range(start, end + 1, step)


def _parse_value(expr: str, text: str, spec: _FieldSpec) -> int:
    if text.isascii() and text.isdigit():
        value = int(text)
        if not spec.low <= value <= spec.high:
            raise InvalidSchedule(
                expr, f"{spec.name} field {text!r} is out of range {spec.low}-{spec.high}"
            )
        return value
    if spec.names and text.isalpha():
        lowered = text.lower()
        if lowered in spec.names:
            return spec.names.index(lowered) + spec.name_base
        valid = " ".join(spec.names)
        raise InvalidSchedule(expr, f"unknown {spec.name_kind} name {text!r} (valid: {valid})")
    raise _not_a_value(expr, text, spec)


def _not_a_value(expr: str, text: str, spec: _FieldSpec) -> InvalidSchedule:
    named = f", {spec.names[0]}-{spec.names[-1]}" if spec.names else ""
    return InvalidSchedule(
        expr,
        f"{spec.name} field {text!r} is not a valid value"
        f" (valid: {spec.low}-{spec.high}{named}, *, a-b, */n, a,b)",
    )


def is_fixed_time(expr: str) -> bool:
    """Whether ``expr`` is a fixed-time schedule for the DST rule (no ``*`` in minute or hour)."""
    return parse(expr).is_fixed_time


# ---------------------------------------------------------------- describing


def describe(expr: str) -> str:
    """Human text for a valid schedule (cron-descriptor, 24-hour clock, English).

    Raises ``InvalidSchedule`` like ``parse``; never anything else. Odd but
    valid fields that cron-descriptor cannot read (``1,*``, ``0-59,5``) are
    described from their values instead.
    """
    record = parse(expr)
    if record.is_reboot:
        return "At every agent start"
    parts = record.fields.split()
    text = _descriptor_text(" ".join(parts))
    if text is None:
        text = _descriptor_text(_canonical(record))
    if text is None:
        text = _plain_description(record)
    dom, dow = parts[-3], parts[-1]
    if (dom.startswith("*") or dow.startswith("*")) and dom != "*" and dow != "*":
        # Debian cron: with a '*' in either day field both must match; cron-descriptor says "or".
        text = text.replace(", or ", ", and ")
    return text


def _descriptor_text(fields: str) -> str | None:
    # Imported on the first description, not with the module: an idle agent only
    # computes fire times (issue 8: idle RSS).
    from cron_descriptor import ExpressionDescriptor, Options

    options = Options()
    options.use_24hour_time_format = True
    options.locale_code = "en_US"
    try:
        return str(ExpressionDescriptor(fields, options).get_description())
    except Exception:  # cron-descriptor raises its own types and ValueError on odd input
        return None


def _value_sets(record: CronExpr) -> list[tuple[frozenset[int], _FieldSpec, bool]]:
    sets = [
        (record.minutes, _MINUTE, record.minute_star),
        (record.hours, _HOUR, record.hour_star),
        (record.days_of_month, _DOM, record.dom_star),
        (record.months, _MONTH, False),
        (record.days_of_week, _DOW, record.dow_star),
    ]
    if record.has_seconds:
        sets.insert(0, (record.seconds, _SECOND, False))
    return sets


def _compress(values: frozenset[int]) -> str:
    """``{1, 2, 3, 7}`` -> ``"1-3,7"``."""
    runs: list[list[int]] = []
    for value in sorted(values):
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _canonical(record: CronExpr) -> str:
    """The schedule with each field as plain values and ranges (``*`` only for a full field)."""
    out = []
    for values, spec, _ in _value_sets(record):
        full = spec.high - (1 if spec is _DOW else 0) - spec.low + 1
        out.append("*" if len(values) == full else _compress(values))
    return " ".join(out)


def _plain_description(record: CronExpr) -> str:
    words = []
    for values, spec, _ in _value_sets(record):
        full = spec.high - (1 if spec is _DOW else 0) - spec.low + 1
        if len(values) != full:
            words.append(f"{spec.name} {_compress(values)}")
    return "At " + ("; ".join(words) if words else "every minute")


# ---------------------------------------------------------------- time zones and `at`


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; raise ``InvalidTimezone`` if this machine does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidTimezone(name) from exc


def parse_at(text: str, tz: ZoneInfo) -> datetime:
    """The instant of a one-shot ``at`` time, as an aware datetime in ``tz``.

    ISO 8601 (``2026-12-01T02:30``, ``2026-12-01 02:30:00+01:00``, ``...Z``). A
    time without an offset is wall time in ``tz`` and follows the fixed-time DST
    rule: in a gap it means the end of the gap, in a repeated hour the first one.
    """
    try:
        parsed = datetime.fromisoformat(text.strip())
    except (ValueError, TypeError, AttributeError):
        raise InvalidSchedule(
            str(text),
            "not an ISO 8601 time (e.g. 2026-12-01T02:30 or 2026-12-01T02:30:00+01:00)",
        ) from None
    if not _MIN_YEAR <= parsed.year <= _MAX_YEAR:
        raise InvalidSchedule(text, f"year {parsed.year} is out of range {_MIN_YEAR}-{_MAX_YEAR}")
    if parsed.tzinfo is not None:
        return parsed.astimezone(tz)
    return datetime.fromtimestamp(_fixed_instant(parsed, tz), tz)


# ---------------------------------------------------------------- fire times


def next_fire_times(expr: str, *, tz: ZoneInfo, after: datetime, n: int) -> list[datetime]:
    """The first ``n`` fire times strictly after ``after`` (for previews)."""
    out: list[datetime] = []
    if n <= 0:
        return out
    for when in fire_times(expr, tz=tz, after=after):
        out.append(when)
        if len(out) >= n:
            break
    return out


def fire_times(
    expr: str | CronExpr, *, tz: ZoneInfo, after: datetime, until: datetime | None = None
) -> Iterator[datetime]:
    """Fire times in ``(after, until]``, oldest first, as aware datetimes in ``tz``.

    ``after`` and ``until`` are aware (any zone). With ``until=None`` the
    iterator is endless (it stops at the end of year 9998); take what you need. Work is
    proportional to the ticks yielded plus the hours skipped, so a call over a
    short window is cheap whatever the schedule.
    """
    record = expr if isinstance(expr, CronExpr) else parse(expr)
    if after.tzinfo is None or (until is not None and until.tzinfo is None):
        raise ValueError("fire_times needs aware datetimes for after and until")
    if record.is_reboot:
        return iter(())
    after_ts = after.timestamp()
    until_ts = None if until is None else until.timestamp()
    if until_ts is not None and until_ts <= after_ts:
        return iter(())
    return _iterate(record, tz, after_ts, until_ts)


def _iterate(
    record: CronExpr, tz: ZoneInfo, after_ts: float, until_ts: float | None
) -> Iterator[datetime]:
    last_ts = after_ts
    pending: list[int] = []  # instants of hours next to a DST change, sorted on flush
    minutes = sorted(record.minutes)
    seconds = sorted(record.seconds)
    try:
        start = datetime.fromtimestamp(after_ts, tz)
    except (ValueError, OverflowError):
        return  # beyond datetime's calendar in this zone
    if start.year > _MAX_YEAR:
        return  # the end of datetime's calendar is near: nothing to schedule there
    # Wall times before `after`'s can be later instants only through a fall-back
    # change ahead (the repeated wall times), so start that much earlier. A gap
    # needs nothing: its wall times all come after a pre-gap `after`.
    ahead = datetime.fromtimestamp(after_ts + 26 * 3600, tz).utcoffset()
    here = start.utcoffset()
    back = here - ahead if here is not None and ahead is not None and here > ahead else None
    first_wall = start.replace(tzinfo=None) - (back or timedelta(0))
    start_day, start_hour = first_wall.date(), first_wall.hour
    last_day = None if until_ts is None else datetime.fromtimestamp(until_ts, tz).date()

    for hour_start, is_simple in _hours(record, tz, start_day, start_hour, last_day):
        if is_simple:
            if pending:
                for ts in sorted(set(pending)):
                    if ts > last_ts:
                        if until_ts is not None and ts > until_ts:
                            return
                        last_ts = ts
                        yield datetime.fromtimestamp(ts, tz)
                pending.clear()
            # A whole hour at one offset: instants are arithmetic from the hour's start.
            base = int(datetime(*hour_start, tzinfo=tz).timestamp())
            if base + 3600 <= last_ts:
                continue
            first = bisect_left(minutes, int(last_ts - base) // 60) if last_ts > base else 0
            for minute in minutes[first:]:
                minute_base = base + minute * 60
                if minute_base + 59 <= last_ts:
                    continue
                for second in seconds:
                    ts = minute_base + second
                    if ts <= last_ts:
                        continue
                    if until_ts is not None and ts > until_ts:
                        return
                    last_ts = ts
                    yield datetime.fromtimestamp(ts, tz)
        else:
            pending.extend(_complex_hour(record, tz, hour_start, minutes, seconds))
    for ts in sorted(set(pending)):
        if ts > last_ts and (until_ts is None or ts <= until_ts):
            last_ts = ts
            yield datetime.fromtimestamp(ts, tz)


_Hour = tuple[int, int, int, int]  # year, month, day, hour (wall clock)


def _hours(
    record: CronExpr, tz: ZoneInfo, start_day: date, start_hour: int, last_day: date | None
) -> Iterator[tuple[_Hour, bool]]:
    """Every matching wall-clock hour from ``start_day`` ``start_hour`` on, and whether it
    is DST-free."""
    hours = sorted(record.hours)
    first_hours = [h for h in hours if h >= start_hour]
    year, month = start_day.year, start_day.month
    first_day = start_day.day
    while year <= _MAX_YEAR:
        if month in record.months:
            for day in range(first_day, calendar.monthrange(year, month)[1] + 1):
                current = date(year, month, day)
                # One day past the last: a gap-shifted tick may land after midnight.
                if last_day is not None and current > last_day + timedelta(days=1):
                    return
                if not record.matches_day(current):
                    continue
                for hour in first_hours if current == start_day else hours:
                    yield (year, month, day, hour), _is_simple_hour(tz, current, hour)
        elif last_day is not None and date(year, month, 1) > last_day:
            return
        first_day = 1
        month += 1
        if month == 13:
            year, month = year + 1, 1


@lru_cache(maxsize=8192)
def _is_simple_hour(tz: ZoneInfo, day: date, hour: int) -> bool:
    """Whether the wall hour has one UTC offset throughout (no gap, no fold touches it)."""
    start = datetime(day.year, day.month, day.day, hour, tzinfo=tz)
    end = start + timedelta(hours=1)  # wall-clock arithmetic: the next wall hour
    offset = start.utcoffset()
    return (
        start.replace(fold=1).utcoffset() == offset
        and end.utcoffset() == offset
        and end.replace(fold=1).utcoffset() == offset
    )


def _complex_hour(
    record: CronExpr, tz: ZoneInfo, hour: _Hour, minutes: list[int], seconds: list[int]
) -> Iterator[int]:
    fixed = record.is_fixed_time
    for minute in minutes:
        for second in seconds:
            wall = datetime(*hour, minute, second)
            if fixed:
                yield _fixed_instant(wall, tz)
            else:
                yield from _real_instants(wall, tz)


def _real_instants(wall: datetime, tz: ZoneInfo) -> list[int]:
    """Every instant whose wall time in ``tz`` is ``wall``: none in a gap, two in a fold."""
    found = []
    for fold in (0, 1):
        candidate = wall.replace(tzinfo=tz, fold=fold)
        ts = int(candidate.timestamp())
        back = datetime.fromtimestamp(ts, tz)
        if back.replace(tzinfo=None) == wall and ts not in found:
            found.append(ts)
    return found


def _fixed_instant(wall: datetime, tz: ZoneInfo) -> int:
    """DESIGN.md (Debian cron): the first occurrence of ``wall``, or the end of its gap."""
    real = _real_instants(wall, tz)
    if real:
        return min(real)
    # In a gap: fold=1 reads the wall with the later offset (an instant before the
    # change), fold=0 with the earlier one (after it). The change lies in between.
    low = int(wall.replace(tzinfo=tz, fold=1).timestamp())
    high = int(wall.replace(tzinfo=tz, fold=0).timestamp())
    if low > high:
        low, high = high, low
    gap_offset = datetime.fromtimestamp(low, tz).utcoffset()
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == gap_offset:
            low = mid
        else:
            high = mid
    return high
