"""The operator's private key: which file, and a clear error when there is none.

Search order: ``key = "..."`` in fleet.toml, then ``CONFIG/id_ed25519`` (made by
``squ keygen``), then the operator's SSH keys (``~/.ssh/id_ed25519``,
``id_ecdsa``, ``id_rsa``): an SSH key the operator already has serves as is
(DESIGN.md "Identity and security").
"""

from __future__ import annotations

from pathlib import Path

from console.config import Inventory
from shared.errors import SquError
from shared.identity import PrivateKey, load_private_key

__all__ = ["NoOperatorKey", "find_key_path", "load_operator_key"]

SSH_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")


class NoOperatorKey(SquError):
    code = "no_operator_key"

    def __init__(self, tried: list[Path]) -> None:
        shown = ", ".join(str(p) for p in tried)
        super().__init__(
            f"no operator key found (tried {shown}); make one with `squ keygen`, "
            'or point fleet.toml at an SSH key: key = "~/.ssh/id_ed25519"',
            tried=[str(p) for p in tried],
        )


def find_key_path(inventory: Inventory, config_dir: Path, home: Path | None = None) -> Path:
    """The key file to use (see the module docstring); raises ``NoOperatorKey``."""
    if inventory.key_path is not None:
        if not inventory.key_path.exists():
            raise NoOperatorKey([inventory.key_path])
        return inventory.key_path
    ssh_dir = (home or Path.home()) / ".ssh"
    tried = [config_dir / "id_ed25519", *(ssh_dir / name for name in SSH_KEYS)]
    for path in tried:
        if path.exists():
            return path
    raise NoOperatorKey(tried)


def load_operator_key(inventory: Inventory, config_dir: Path) -> PrivateKey:
    """Read the operator's key; errors name the file and why (passphrase, format)."""
    path = find_key_path(inventory, config_dir)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SquError(f"cannot read operator key {path}: {exc.strerror}") from None
    return load_private_key(data, where=str(path))
