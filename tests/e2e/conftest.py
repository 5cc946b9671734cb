"""Fixtures for end-to-end agent tests: a real ``squ-agentd serve`` in a temp data dir."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.agentkit import AgentProc

# The daemon wires these together; while one is still being written the e2e
# tests skip, naming it, instead of failing for a reason outside the daemon.
REQUIRED = (
    "agentd.config",
    "agentd.supervisor.client",
    "agentd.procenv",
    "agentd.logs",
    "shared.misfire",
    "shared.retry",
)


def missing_modules() -> list[str]:
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def _skip_if_missing() -> None:
    missing = missing_modules()
    if missing:
        pytest.skip(f"the daemon needs modules not landed yet: {', '.join(missing)}")


@pytest.fixture(scope="module")
def shared_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProc]:
    """One running agent for a module's read-mostly tests (each test uses its own jobs)."""
    _skip_if_missing()
    proc = AgentProc(tmp_path_factory.mktemp("shared") / "data")
    try:
        yield proc
    finally:
        proc.cleanup()


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProc]:
    """A stopped agent with an empty jobs.d; every process it leaves is killed afterwards."""
    _skip_if_missing()
    proc = AgentProc(tmp_path / "data")
    try:
        yield proc
    finally:
        proc.cleanup()
