"""``squ keygen``: make the operator's Ed25519 key in OpenSSH format.

The key is an ordinary OpenSSH key, so ``ssh-keygen -Y sign`` can use it and an
existing SSH key can serve instead (set ``key = "~/.ssh/id_ed25519"`` in
fleet.toml). The public line is what goes into an agent's
``authorized_operators`` file.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from console.config import config_dir
from shared.errors import SquError


class KeyExists(SquError):
    code = "key_exists"

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} already exists; pass --force to replace it", path=str(path))


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("keygen", help="make the operator key (OpenSSH Ed25519)")
    p.add_argument("-f", "--file", help="where to write the key (default: CONFIG/id_ed25519)")
    p.add_argument("-C", "--comment", default="", help="comment on the public key (your name)")
    p.add_argument("--force", action="store_true", help="replace an existing key")
    p.set_defaults(func=run)


def write_keypair(path: Path, *, comment: str, force: bool = False) -> str:
    """Write ``path`` (0600) and ``path.pub``; returns the public key line."""
    if path.exists() and not force:
        raise KeyExists(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    line = f"{public} {comment}".strip()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    Path(f"{path}.pub").write_text(line + "\n")
    return line


def run(args: argparse.Namespace) -> int:
    path = Path(args.file).expanduser() if args.file else config_dir(args.config_dir) / "id_ed25519"
    comment = args.comment or f"{os.environ.get('USER', 'operator')}@squ"
    line = write_keypair(path, comment=comment, force=args.force)
    print(f"wrote {path} and {path}.pub")
    print("add this line to each agent's authorized_operators (with a role and name):")
    print(f"  operator {comment.split('@')[0]} {line}")
    return 0
