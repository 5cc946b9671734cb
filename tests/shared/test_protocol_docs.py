"""docs/protocol.md names every method, topic, error code and close code (Datasette-style)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.protocol import METHODS, TOPICS, CloseCode, ErrorCode

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_is_documented(method: str) -> None:
    """Each method appears in docs/protocol.md with its minimum role."""
    spec = METHODS[method]
    assert f"| `{method}` |" in DOC
    row = next(line for line in DOC.splitlines() if line.startswith(f"| `{method}` |"))
    assert f"| {spec.min_role} |" in row


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_topic_is_documented(topic: str) -> None:
    """Each topic appears in docs/protocol.md."""
    assert f"| `{topic}` |" in DOC


@pytest.mark.parametrize("code", [c.value for c in ErrorCode])
def test_error_code_is_documented(code: str) -> None:
    """Each error code appears in docs/protocol.md."""
    assert f"| `{code}` |" in DOC


@pytest.mark.parametrize("code", list(CloseCode))
def test_close_code_is_documented(code: CloseCode) -> None:
    """Each close code we send appears in docs/protocol.md."""
    assert f"| {code.value} |" in DOC
