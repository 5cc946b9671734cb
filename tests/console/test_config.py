"""The operator's inventory: round trip, validation, pinning."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.config import AgentEntry, InventoryError, load_inventory, save_inventory


def test_missing_inventory_is_empty(tmp_path: Path) -> None:
    """No fleet.toml yet means no agents, not an error."""
    assert load_inventory(tmp_path).agents == ()


def test_round_trip_keeps_agents_and_pins(tmp_path: Path) -> None:
    """Agents, labels and a pinned fingerprint survive save and load."""
    inv = load_inventory(tmp_path)
    inv = inv.with_agent(AgentEntry(name="db1", url="wss://db1:7421", labels={"role": "db"}))
    inv = inv.with_agent(AgentEntry(name="local", url="ws://127.0.0.1:7421"))
    inv = inv.pinned("db1", "SHA256:abc+/=")
    save_inventory(inv)
    again = load_inventory(tmp_path)
    assert again.get("db1") == AgentEntry(
        name="db1", url="wss://db1:7421", fingerprint="SHA256:abc+/=", labels={"role": "db"}
    )
    assert again.get("local").is_loopback


def test_plain_ws_is_refused_off_loopback(tmp_path: Path) -> None:
    """ws:// to a remote host is refused with the reason."""
    inv = load_inventory(tmp_path)
    with pytest.raises(InventoryError, match=r"plain ws:// is allowed only on loopback"):
        inv.with_agent(AgentEntry(name="db1", url="ws://10.0.0.5:7421"))


def test_unknown_server_names_the_known_ones(tmp_path: Path) -> None:
    """Asking for an unknown server says which ones exist."""
    inv = load_inventory(tmp_path).with_agent(AgentEntry(name="web1", url="wss://web1:7421"))
    with pytest.raises(InventoryError, match=r"unknown server 'db9' \(known: web1\)"):
        inv.get("db9")


def test_broken_file_names_the_file(tmp_path: Path) -> None:
    """A TOML error names fleet.toml."""
    (tmp_path / "fleet.toml").write_text("[agents.x\nurl=1")
    with pytest.raises(InventoryError, match=r"fleet\.toml"):
        load_inventory(tmp_path)
