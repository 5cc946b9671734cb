"""The : command line and the / filter, parsed without a UI."""

from __future__ import annotations

import pytest

from console.cmdline import BadCommand, parse_command, parse_duration_s, parse_filter

NOW = 1_800_000_000.0


def test_runs_command_builds_filters() -> None:
    """:runs with job, status list, agent and since becomes one RunFilter."""
    command = parse_command(":runs job=backup status=failed,timeout @db1 since=24h", now=NOW)
    flt = command.filters
    assert (command.name, flt.job, flt.agent) == ("runs", "backup", "db1")
    assert flt.statuses == {"failed", "timeout"}
    assert flt.since == NOW - 86400


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("runs status=broken", "status 'broken'"),
        ("runs colour=red", "'colour' is not a runs filter"),
        ("runs since=yesterday", "since: 'yesterday' is not a duration"),
        ("runs job", "'job': expected key=value"),
        ("logs", "logs takes exactly one argument"),
        ("jobs extra", "jobs takes no argument 'extra'"),
        ("frob", "unknown command 'frob'"),
        ("runs job='unclosed", "No closing quotation"),
    ],
)
def test_mistakes_name_the_word(text: str, named: str) -> None:
    """Each mistake raises BadCommand quoting the part that is wrong."""
    with pytest.raises(BadCommand) as caught:
        parse_command(text, now=NOW)
    assert named in caught.value.message


def test_jobs_at_agent() -> None:
    """:jobs @db1 names the agent."""
    assert parse_command("jobs @db1", now=NOW).agent == "db1"


def test_logs_with_agent() -> None:
    """:logs ID @agent keeps both."""
    command = parse_command("logs 01ABC @web1", now=NOW)
    assert (command.argument, command.agent) == ("01ABC", "web1")


def test_durations() -> None:
    """Durations take s, m, h, d and w."""
    assert [parse_duration_s(t) for t in ("90s", "30m", "2h", "1d", "1w")] == [
        90,
        1800,
        7200,
        86400,
        604800,
    ]


def test_bang_inverts_filter() -> None:
    """A leading ! inverts the / filter."""
    assert parse_filter("!^backup") == ("^backup", True)
    assert parse_filter("backup") == ("backup", False)


def test_ssh_takes_an_agent() -> None:
    """:ssh db1 and :ssh @db1 both name the agent."""
    assert parse_command("ssh db1", now=NOW).argument == "db1"
    assert parse_command("ssh @db1", now=NOW).argument == "db1"
