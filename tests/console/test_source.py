"""The TUI's fleet interface: StaticFleet and the network Fleet both provide it."""

from __future__ import annotations

import inspect

import pytest

from console.fleet.fleet import Fleet
from console.fleet.mirror import JobSummary
from console.fleet.source import (
    AgentUnavailable,
    FleetSource,
    LogPiece,
    StaticFleet,
)
from console.screens.trigger import equivalent_command, needs_typed_name
from shared.models import Job
from tests.console import fixed

METHODS = [
    name
    for name, member in vars(FleetSource).items()
    if callable(member) and not name.startswith("_")
]


@pytest.mark.parametrize("name", METHODS)
def test_network_fleet_has_every_method_with_the_same_shape(name: str) -> None:
    """console.fleet.fleet.Fleet implements each FleetSource method with the same parameters."""
    wanted = list(inspect.signature(getattr(FleetSource, name)).parameters)
    found = list(inspect.signature(getattr(Fleet, name)).parameters)
    assert found[: len(wanted)] == wanted


def test_static_fleet_is_a_fleet_source() -> None:
    """StaticFleet satisfies the runtime-checkable protocol."""
    assert isinstance(fixed.fleet(), FleetSource)


async def test_action_on_a_down_agent_fails_at_once() -> None:
    """An action on an agent whose link is down raises AgentUnavailable naming it."""
    fleet = fixed.fleet()
    with pytest.raises(AgentUnavailable, match="agent web2 is down"):
        await fleet.trigger("rotate-logs", "web2", {})


async def test_stored_log_pages_follow_the_cursor() -> None:
    """read_log pages with next_offset until is_eof, every piece once."""
    fleet = StaticFleet(
        states=list(fixed.AGENTS),
        logs={"X": [LogPiece(stream="stdout", data=bytes([65 + i])) for i in range(5)]},
    )
    seen, offset = [], 0
    while True:
        page = await fleet.read_log("db1", "X", offset, 2)
        seen += [p.data for p in page.pieces]
        offset = page.next_offset
        if page.is_eof:
            break
    assert seen == [b"A", b"B", b"C", b"D", b"E"]


def test_equivalent_command_quotes_values() -> None:
    """The squ run command quotes parameter values the shell would split."""
    assert equivalent_command("backup", ["db1", "db2"], {"note": "two words"}) == (
        "squ run backup --on db1 --on db2 --param 'note=two words'"
    )


def test_many_servers_or_production_needs_the_typed_name() -> None:
    """Three targets, or env=production, ask for the job name to be typed."""

    def make(agents: tuple[str, ...], labels: dict[str, str]) -> JobSummary:
        job = Job(name="j", command="true", labels=labels)
        return JobSummary(name="j", agents=agents, job=job, sources=(), version=1, is_enabled=True)

    assert not needs_typed_name(make(("a", "b"), {}), ("a", "b"))
    assert needs_typed_name(make(("a", "b", "c"), {}), ("a", "b", "c"))
    assert needs_typed_name(make(("a",), {"env": "production"}), ("a",))
