"""``squ alerts`` against real agents: list across the fleet, acknowledge (audited), agent down."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.agentkit import wait_for
from tests.e2e.conftest import _skip_if_missing
from tests.e2e.wirekit import Wire


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[Wire]:
    _skip_if_missing()
    kit = Wire(tmp_path)
    try:
        yield kit
    finally:
        kit.cleanup()


def _failing_agent(wire: Wire, name: str) -> None:
    proc = wire.agent(name)
    proc.write_jobs("f.toml", '[job.fails]\ncommand = "exit 5"\n')
    proc.hup()
    wait_for(lambda: proc.request("jobs"), what="the job loaded")
    proc.request("run", {"job": "fails", "wait": True}, timeout_s=30)


def test_alerts_listed_across_agents_then_acknowledged(wire: Wire) -> None:
    """Each agent's alert is listed with its agent; --ack ID@AGENT acknowledges only there."""
    for name in ("db1", "db2"):
        _failing_agent(wire, name)
    listed = wire.squ("alerts", "--json")
    assert listed.returncode == 0, listed.stderr
    alerts = json.loads(listed.stdout)
    assert sorted((a["agent"], a["kind"], a["exit_code"]) for a in alerts) == [
        ("db1", "failed", 5),
        ("db2", "failed", 5),
    ]
    first = next(a for a in alerts if a["agent"] == "db1")
    acked = wire.squ("alerts", "--ack", f"{first['id']}@db1")
    assert acked.returncode == 0, acked.stderr
    assert f"{first['id']}: acknowledged on db1" in acked.stdout
    left = json.loads(wire.squ("alerts", "--json").stdout)
    assert [a["agent"] for a in left] == ["db2"]
    everything = json.loads(wire.squ("alerts", "--all", "--json").stdout)
    assert {a["acked_by"] for a in everything if a["agent"] == "db1"} == {"alice"}


def test_unknown_alert_ack_is_refused_by_name(wire: Wire) -> None:
    """Acknowledging an id no agent holds says so and exits 2."""
    _failing_agent(wire, "db1")
    result = wire.squ("alerts", "--ack", "nope")
    assert result.returncode == 2
    assert "no alert 'nope' on db1" in result.stderr


def test_agent_that_stopped_answering_is_named(wire: Wire) -> None:
    """An agent that does not answer is named on stderr; the others' alerts still show."""
    _failing_agent(wire, "db1")
    wire.agent("db2").stop()
    result = wire.squ("alerts", "--connect-timeout", "2")
    assert result.returncode == 4, result.stderr
    assert "db2:" in result.stderr and "fails on db1 failed (exit 5)" in result.stdout
