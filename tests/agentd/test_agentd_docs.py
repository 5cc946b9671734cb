"""docs/agentd.md keeps up with the code: every daemon command and control method is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentd.cli import COMMANDS
from agentd.daemon import Agent

DOC = (Path(__file__).resolve().parents[2] / "docs" / "agentd.md").read_text()
ALL_DOCS = "\n".join(
    p.read_text() for p in (Path(__file__).resolve().parents[2] / "docs").glob("*.md")
)


@pytest.mark.parametrize("command", [c.replace("_", "-") for c in COMMANDS])
def test_every_command_has_an_example(command: str) -> None:
    """Each `squ-agentd` subcommand appears as `squ-agentd <command>` somewhere in docs/."""
    assert f"squ-agentd {command}" in ALL_DOCS


def test_every_control_method_is_in_the_table(tmp_path: Path) -> None:
    """Each method the control socket serves has a row in the docs' method table."""
    from agentd.config import load_config

    methods = Agent(load_config(tmp_path))._handlers()
    missing = [m for m in methods if f"| `{m}` |" not in DOC]
    assert missing == []
