"""Where the server's files live in the data dir, and one call each for init and serve.

``squ-agentd init`` calls ``init_server_files(data_dir, hostname)`` (certificate,
key, an authorized_operators template; prints the returned fingerprint);
the daemon calls ``start_server(...)`` once its store and executor exist.
Layout: ``DATA/tls/agent.crt``, ``DATA/tls/agent.key`` (0600),
``DATA/authorized_operators`` (0600).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agentd.server.listen import Server, ServerConfig, serve
from agentd.server.ops_store import StoreOps
from agentd.server.tls import ensure_certificate, server_context
from shared.identity import load_private_key, public_key_line

__all__ = [
    "AGENT_KEY",
    "OPERATORS_FILE",
    "TLS_CERT",
    "TLS_KEY",
    "ensure_agent_key",
    "init_server_files",
    "start_server",
]

TLS_CERT = Path("tls/agent.crt")
TLS_KEY = Path("tls/agent.key")
OPERATORS_FILE = Path("authorized_operators")
# The agent's own operator key (OpenSSH Ed25519): what it signs with when, as a
# workflow coordinator, it logs in to peers (which list it as `coordinator`).
AGENT_KEY = Path("identity/agent_ed25519")

_OPERATORS_TEMPLATE = """\
# squ-cron authorized_operators: who may connect to this agent, and as what.
# One line each: ROLE NAME KEY, where KEY is an OpenSSH public key line
# (an existing ~/.ssh/id_ed25519.pub works; `squ keygen` makes one).
# Roles: viewer < operator < approver < admin; coordinator for agents that
# drive workflow steps. Changes apply to the next login, no restart needed.
#
# admin alice ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... alice@laptop
"""


def init_server_files(data_dir: Path, hostname: str) -> str:
    """Make the certificate (unless present) and an operators template; returns the fingerprint."""
    data_dir = Path(data_dir)
    (data_dir / "tls").mkdir(parents=True, exist_ok=True, mode=0o700)
    fingerprint = ensure_certificate(data_dir / TLS_CERT, data_dir / TLS_KEY, hostname)
    operators = data_dir / OPERATORS_FILE
    if not operators.exists():
        fd = os.open(operators, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, _OPERATORS_TEMPLATE.encode())
        finally:
            os.close(fd)
    return fingerprint


async def start_server(
    store: Any,
    *,
    data_dir: Path,
    agent_name: str,
    agent_version: str,
    host: str,
    port: int,
    executor: Any = None,
    containment: str = "process-group",
    config: ServerConfig | None = None,
    on_jobs_changed: Callable[[], Awaitable[Any]] | None = None,
) -> Server:
    """Serve the agent: wss:// with its certificate; plain ws:// only without one, on loopback.

    Raises ``InsecureListen`` if there is no certificate and ``host`` is not
    loopback (run ``squ-agentd init``), ``TlsError`` if the pair is unreadable.
    """
    data_dir = Path(data_dir)
    cert, key = data_dir / TLS_CERT, data_dir / TLS_KEY
    has_cert = cert.exists() and key.exists()
    # TLS whenever the agent has a certificate; without one, serve() allows loopback only
    # (the demo / test case) and otherwise says to run init.
    context = server_context(cert, key) if has_cert else None
    ops = StoreOps(
        store,
        agent_name=agent_name,
        agent_version=agent_version,
        data_dir=data_dir,
        executor=executor,
        containment=containment,
        on_jobs_changed=on_jobs_changed,
    )
    return await serve(
        ops,
        config or ServerConfig(authorized_operators=data_dir / OPERATORS_FILE),
        host=host,
        port=port,
        ssl_context=context,
    )


def ensure_agent_key(data_dir: Path, comment: str = "") -> str:
    """Make the agent's own Ed25519 key (OpenSSH format, 0600) unless present.

    Returns its public key line, to put in peers' authorized_operators as
    ``coordinator <name> <line>``. An existing key is kept.
    """
    path = Path(data_dir) / AGENT_KEY
    if path.exists():
        return public_key_line(load_private_key(path.read_bytes(), where=str(path)))
    # Imported here, not at the top: serving never makes a key (idle RSS, issue 8).
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    line = public_key_line(key) + (f" {comment}" if comment else "")
    path.with_name(path.name + ".pub").write_text(line + "\n")
    return public_key_line(key)
