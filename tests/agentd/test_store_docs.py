"""docs/store.md keeps up with the store's public surface."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentd.store import errors, executions, jobs, meta

DOC = (Path(__file__).resolve().parents[2] / "docs" / "store.md").read_text()


@pytest.mark.parametrize(
    "name",
    sorted({*executions.__all__, *jobs.__all__, *meta.__all__, *errors.__all__} - {"StoreError"}),
)
def test_every_public_name_is_documented(name: str) -> None:
    """Each function, constant and error the store exports is named in docs/store.md."""
    assert f"`{name}" in DOC
