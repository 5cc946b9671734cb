"""Small agent state in the meta table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentd.store import Store, meta
from tests.agentd.storekit import open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    yield from open_store(tmp_path / "agent.db")


def test_missing_key_gives_default(store: Store) -> None:
    """get on a key never set returns the default."""
    assert store.call_sync(meta.get, "boot_id", "none") == "none"


def test_value_round_trips_as_json(store: Store) -> None:
    """A JSON-able value comes back equal, and a second set replaces it."""
    store.call_sync(meta.set, "clock", {"wall": 1.5, "mono": 2})
    store.call_sync(meta.set, "clock", {"wall": 3.0, "mono": 4})
    assert store.call_sync(meta.get, "clock") == {"wall": 3.0, "mono": 4}


def test_delete_forgets_key(store: Store) -> None:
    """After delete, get returns the default; deleting again is harmless."""
    store.call_sync(meta.set, "k", 1)
    store.call_sync(meta.delete, "k")
    store.call_sync(meta.delete, "k")
    assert store.call_sync(meta.get, "k") is None
