"""docs/agentd.md keeps up with the code: every daemon command and control method is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentd.daemon import Agent

DOC = (Path(__file__).resolve().parents[2] / "docs" / "agentd.md").read_text()
COMMANDS = ("serve", "reload", "status", "jobs", "run", "history", "logs")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_daemon_command_has_an_example(command: str) -> None:
    """Each command the daemon part provides appears as `squ-agentd <command>` in the docs."""
    assert f"squ-agentd {command}" in DOC


def test_every_control_method_is_in_the_table(tmp_path: Path) -> None:
    """Each method the control socket serves has a row in the docs' method table."""
    from agentd.config import load_config

    methods = Agent(load_config(tmp_path))._handlers()
    missing = [m for m in methods if f"| `{m}` |" not in DOC]
    assert missing == []
