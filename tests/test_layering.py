"""Imports go one way (docs/architecture.md): shared is pure, agentd and console never meet."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# shared/ must stay free of I/O so that it can be tested with plain calls.
SHARED_FORBIDDEN = {
    "agentd",
    "console",
    "asyncio",
    "socket",
    "sqlite3",
    "sqlite_utils",
    "subprocess",
    "websockets",
    "textual",
    "psutil",
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", python_files("shared"), ids=lambda p: str(p.relative_to(ROOT)))
def test_shared_imports_no_io(path: Path) -> None:
    """shared/ imports no I/O library and neither agentd nor console."""
    assert imported_roots(path) & SHARED_FORBIDDEN == set()


@pytest.mark.parametrize("path", python_files("agentd"), ids=lambda p: str(p.relative_to(ROOT)))
def test_agentd_does_not_import_console(path: Path) -> None:
    """agentd never imports console."""
    assert "console" not in imported_roots(path)


@pytest.mark.parametrize("path", python_files("console"), ids=lambda p: str(p.relative_to(ROOT)))
def test_console_does_not_import_agentd(path: Path) -> None:
    """console talks to agents only over the wire, never by importing agentd."""
    assert "agentd" not in imported_roots(path)


def test_widgets_never_touch_the_network() -> None:
    """console widgets never import the network layer (CONSOLE.md: widgets render, links talk)."""
    for path in sorted((ROOT / "console" / "widgets").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("console.fleet.link"), path
                assert not node.module.startswith("websockets"), path
