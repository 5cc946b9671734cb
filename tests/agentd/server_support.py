"""A real agent server on 127.0.0.1:0 over a real store, with real operator keys."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agentd.server import Server, ServerConfig, serve
from agentd.server.ops_store import StoreOps
from agentd.store import Store
from shared.enums import Role
from shared.identity import public_key_line
from tests.agentd.wsclient import Client

ROLES = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)


@dataclass
class RunningAgent:
    server: Server
    store: Store
    ops: StoreOps
    data_dir: Path
    keys: dict[Role, ed25519.Ed25519PrivateKey]
    ssl_client: ssl.SSLContext | None = None
    clients: list[Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        scheme = "wss" if self.ssl_client is not None else "ws"
        return f"{scheme}://127.0.0.1:{self.server.port}"

    async def login(self, role: Role = Role.ADMIN) -> Client:
        client = await Client.login(self.url, self.keys[role], ssl_context=self.ssl_client)
        self.clients.append(client)
        return client

    async def open(self) -> Client:
        client = await Client.open(self.url, ssl_context=self.ssl_client)
        self.clients.append(client)
        return client


StartAgent = Callable[..., Awaitable[RunningAgent]]


@pytest.fixture
async def start_agent(tmp_path: Path) -> AsyncIterator[StartAgent]:
    """Start an agent server; keyword arguments override ServerConfig fields."""
    started: list[RunningAgent] = []

    async def start(
        *,
        ops_class: type[StoreOps] = StoreOps,
        ssl_context: ssl.SSLContext | None = None,
        ssl_client: ssl.SSLContext | None = None,
        **overrides: Any,
    ) -> RunningAgent:
        data_dir = tmp_path / f"agent{len(started)}"
        data_dir.mkdir()
        keys = {role: ed25519.Ed25519PrivateKey.generate() for role in ROLES}
        operators = data_dir / "authorized_operators"
        operators.write_text(
            "# role name key\n"
            + "".join(f"{role} {role}-op {public_key_line(key)}\n" for role, key in keys.items())
        )
        store = await Store.open(data_dir / "agentd.db", synchronous="NORMAL")
        ops = ops_class(store, agent_name="db1", agent_version="0.1", data_dir=data_dir)
        config = ServerConfig(authorized_operators=operators, **overrides)
        server = await serve(ops, config, host="127.0.0.1", port=0, ssl_context=ssl_context)
        agent = RunningAgent(server, store, ops, data_dir, keys, ssl_client)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        for client in agent.clients:
            await client.close()
        agent.server.close()
        await agent.server.wait_closed()
        await agent.store.close()
