"""CLI helpers: --since parsing, exit codes of `run --wait`, history filters."""

from __future__ import annotations

import datetime as dt

import pytest

from agentd import control
from agentd.commands._common import BadArgument, parse_since
from agentd.daemon import history_filters
from agentd.executor import exit_code_of
from shared.enums import ExecutionStatus as S
from shared.enums import Trigger
from shared.models import Execution

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "ago_s"), [("24h", 86400), ("30m", 1800), ("7d", 604800), ("90s", 90), ("2w", 1209600)]
)
def test_since_accepts_durations(text: str, ago_s: int) -> None:
    """A duration means that long before now."""
    assert parse_since(text, now=NOW) == NOW - ago_s


def test_since_accepts_iso_time() -> None:
    """An ISO time with an offset is taken as given."""
    assert (
        parse_since("2027-01-15T08:00:00+00:00", now=NOW)
        == dt.datetime(2027, 1, 15, 8, tzinfo=dt.UTC).timestamp()
    )


def test_since_refuses_nonsense_naming_the_option() -> None:
    """Anything else is a one-line error naming --since and the value."""
    with pytest.raises(BadArgument) as info:
        parse_since("yesterday-ish", now=NOW)
    assert info.value.message.startswith("--since: 'yesterday-ish'")


def _ex(status: S, exit_code: int | None = None, signal: int | None = None) -> Execution:
    return Execution(
        id="X",
        job="j",
        server="s",
        run_id="X",
        trigger=Trigger.MANUAL,
        status=status,
        exit_code=exit_code,
        signal=signal,
    )


@pytest.mark.parametrize(
    ("ex", "code"),
    [
        (_ex(S.SUCCESS, 0), 0),
        (_ex(S.FAILED, 7), 7),
        (_ex(S.FAILED, None, 9), 137),
        (_ex(S.TIMEOUT, None, 15), 124),
        (_ex(S.TIMEOUT), 124),
        (_ex(S.CANCELLED), 130),
        (_ex(S.LOST), 125),
        (_ex(S.SKIPPED), 3),
    ],
)
def test_run_wait_exit_code(ex: Execution, code: int) -> None:
    """run --wait: a fixed code for timeout/cancel/lost/skip, else the job's code or 128+signal."""
    assert exit_code_of(ex) == code


def test_history_filter_refuses_unknown_status() -> None:
    """An unknown --status is refused with the list of statuses."""
    with pytest.raises(control.BadRequest) as info:
        history_filters({"status": "exploded"})
    assert (
        "success" in info.value.message and "status: unknown value 'exploded'" in info.value.message
    )


def test_history_filter_refuses_a_bad_since() -> None:
    """A since that is not a number is a bad request naming the value, not an internal error."""
    with pytest.raises(control.BadRequest) as info:
        history_filters({"since": "last tuesday"})
    assert "'last tuesday'" in info.value.message
