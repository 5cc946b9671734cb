"""docs/cli.md documents every ``squ`` command, each with an example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from console.cli import COMMANDS, build_parser

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def sections() -> dict[str, str]:
    """Section title (the command) -> its text."""
    parts = re.split(r"^## squ (\S+)\s*$", DOC.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_section_with_an_example(command: str) -> None:
    """Each command in console/cli.py has '## squ NAME' and a ```sh block using it."""
    text = sections().get(command)
    assert text is not None, f"docs/cli.md has no '## squ {command}' section"
    examples = re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)
    assert any(
        line.startswith("squ") and (command in line.split() or command == "tui")
        for block in examples
        for line in block.splitlines()
    ), f"docs/cli.md: '## squ {command}' has no example"


def test_every_documented_command_exists() -> None:
    """No section documents a command the CLI does not have."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert set(sections()) <= set(subparsers.choices)  # type: ignore[arg-type]
