"""The agent's WebSocket server: listen.py (serve, TLS, limits), session.py (one per
connection), handlers.py (one async function per method, and the ``AgentOps`` seam),
ops_store.py (``AgentOps`` over the store), tls.py (certificate and fingerprint)."""

from __future__ import annotations

from agentd.server.handlers import HANDLERS, AgentOps, CallContext
from agentd.server.listen import OperatorsFile, Server, ServerConfig, serve
from agentd.server.tls import (
    InsecureListen,
    certificate_fingerprint,
    ensure_certificate,
    is_loopback,
    server_context,
)

__all__ = [
    "HANDLERS",
    "AgentOps",
    "CallContext",
    "InsecureListen",
    "OperatorsFile",
    "Server",
    "ServerConfig",
    "certificate_fingerprint",
    "ensure_certificate",
    "is_loopback",
    "serve",
    "server_context",
]
