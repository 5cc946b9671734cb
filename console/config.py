"""The operator's inventory and key: ``~/.config/squ/`` (XDG).

``fleet.toml`` lists agents by name with their URL and the certificate
fingerprint pinned on first use (like SSH's known_hosts). It is rewritten
atomically, so a crash while pinning never leaves a half-written inventory.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from shared.errors import SquError

__all__ = [
    "AgentEntry",
    "Inventory",
    "InventoryError",
    "config_dir",
    "load_inventory",
    "save_inventory",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class InventoryError(SquError):
    code = "inventory"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentEntry:
    name: str
    url: str
    fingerprint: str = ""  # "SHA256:..." pinned on first connection; "" = not yet pinned
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def is_loopback(self) -> bool:
        host = (urlsplit(self.url).hostname or "").lower()
        return host in LOOPBACK_HOSTS or host.startswith("127.")


@dataclass(frozen=True, slots=True, kw_only=True)
class Inventory:
    path: Path
    agents: tuple[AgentEntry, ...] = ()
    key_path: Path | None = None  # operator key; None = default search

    def get(self, name: str) -> AgentEntry:
        for agent in self.agents:
            if agent.name == name:
                return agent
        known = ", ".join(a.name for a in self.agents) or "none"
        raise InventoryError(
            f"unknown server {name!r} (known: {known}); add it with `squ agents add`"
        )

    def with_agent(self, entry: AgentEntry) -> Inventory:
        """A copy with ``entry`` added or replaced (same name)."""
        check_agent(entry, where=str(self.path))
        others = tuple(a for a in self.agents if a.name != entry.name)
        return replace(self, agents=(*others, entry))

    def without_agent(self, name: str) -> Inventory:
        self.get(name)
        return replace(self, agents=tuple(a for a in self.agents if a.name != name))

    def pinned(self, name: str, fingerprint: str) -> Inventory:
        return self.with_agent(replace(self.get(name), fingerprint=fingerprint))


def config_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--config-dir``, else ``$SQU_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/squ``."""
    if explicit:
        return Path(explicit).expanduser()
    if env := os.environ.get("SQU_CONFIG_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "squ"


def check_agent(entry: AgentEntry, *, where: str) -> None:
    if not _NAME.match(entry.name):
        raise InventoryError(
            f"{where}: agent name {entry.name!r} must be letters, digits, '.', '_' or '-'"
        )
    parts = urlsplit(entry.url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise InventoryError(
            f"{where}: agent {entry.name}: url {entry.url!r} must look like wss://host:port"
        )
    if parts.scheme == "ws" and not entry.is_loopback:
        raise InventoryError(
            f"{where}: agent {entry.name}: plain ws:// is allowed only on loopback; use wss://"
        )


def load_inventory(directory: Path) -> Inventory:
    """Read ``directory/fleet.toml``; a missing file is an empty inventory."""
    path = directory / "fleet.toml"
    if not path.exists():
        return Inventory(path=path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"{path}: {exc}") from None
    agents = []
    for name, table in (data.get("agents") or {}).items():
        if not isinstance(table, dict) or not isinstance(table.get("url"), str):
            raise InventoryError(f'{path}: [agents.{name}] needs url = "wss://host:port"')
        entry = AgentEntry(
            name=name,
            url=table["url"],
            fingerprint=str(table.get("fingerprint", "")),
            labels={str(k): str(v) for k, v in (table.get("labels") or {}).items()},
        )
        check_agent(entry, where=str(path))
        agents.append(entry)
    key = data.get("key")
    return Inventory(
        path=path,
        agents=tuple(agents),
        key_path=Path(key).expanduser() if isinstance(key, str) else None,
    )


def _toml_str(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes).
    return json.dumps(value, ensure_ascii=False)


def render_inventory(inventory: Inventory) -> str:
    lines = ["# squ fleet inventory: agents by name, with pinned certificate fingerprints.", ""]
    if inventory.key_path is not None:
        lines += [f"key = {_toml_str(str(inventory.key_path))}", ""]
    for agent in inventory.agents:
        lines.append(f"[agents.{_toml_str(agent.name)}]")
        lines.append(f"url = {_toml_str(agent.url)}")
        if agent.fingerprint:
            lines.append(f"fingerprint = {_toml_str(agent.fingerprint)}")
        if agent.labels:
            inner = ", ".join(f"{_toml_str(k)} = {_toml_str(v)}" for k, v in agent.labels.items())
            lines.append(f"labels = {{ {inner} }}")
        lines.append("")
    return "\n".join(lines)


def save_inventory(inventory: Inventory) -> None:
    """Write atomically: temp file, fsync, rename."""
    inventory.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = inventory.path.with_suffix(".toml.tmp")
    with open(tmp, "w") as fh:
        fh.write(render_inventory(inventory))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, inventory.path)
