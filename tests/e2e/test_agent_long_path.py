"""Regression: an agent whose data directory is deep still serves its Unix sockets.

`squ-agentd serve` crashed with "AF_UNIX path too long" when DATA/agentd.sock
was longer than sun_path's 108 bytes (a package installed into a scratch root,
a deep pytest tmp dir under xdist).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.agentkit import AgentProc


@pytest.fixture
def deep_agent(tmp_path: Path) -> Iterator[AgentProc]:
    data = tmp_path / ("d" * 60) / ("e" * 40) / "data"
    data.parent.mkdir(parents=True)
    for part in (tmp_path / ("d" * 60), data.parent):
        os.chmod(part, 0o755)
    assert len(str(data / "agentd.sock")) > 108
    proc = AgentProc(data)
    try:
        yield proc
    finally:
        proc.cleanup()


def test_agent_with_a_deep_data_dir_serves_its_control_socket(deep_agent: AgentProc) -> None:
    """Start, run a job through the control socket and read it back: all sockets reachable."""
    deep_agent.write_jobs("jobs.toml", '[job.hi]\ncommand = "echo hi"\n')
    deep_agent.start()
    done = deep_agent.cli("run", "hi", "--wait")
    assert done.returncode == 0, done.stderr
    assert deep_agent.cli("logs", done.stdout.split()[0]).stdout == "hi\n"
