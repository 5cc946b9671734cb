"""Alerts over the wire against a real agent server (real store, keys, socket on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agentd.server import Server, ServerConfig, serve
from agentd.server.ops_store import StoreOps
from agentd.store import Store, executions
from shared.alerts import AlertAck, AlertsBatch, AlertsQuery, AlertsResult, AlertsSince
from shared.audit import AuditSince
from shared.identity import public_key_line
from shared.protocol import Subscribe
from shared.status import Event
from tests.agentd.storekit import T0, scheduled
from tests.agentd.wsclient import Client, RemoteError

PEOPLE = {"alice": "operator", "vic": "viewer"}


@dataclass
class Agent:
    server: Server
    store: Store
    keys: dict[str, ed25519.Ed25519PrivateKey]
    clients: list[Client] = field(default_factory=list)

    async def login(self, who: str) -> Client:
        client = await Client.login(f"ws://127.0.0.1:{self.server.port}", self.keys[who])
        self.clients.append(client)
        return client

    async def fail(self, at: float = T0) -> str:
        """Record a failed execution (and so its alert), as the executor would."""
        ex = await self.store.call(executions.insert_execution, scheduled(at=at))
        assert ex is not None
        await self.store.call(executions.apply_event, ex.id, Event.START, now=at)
        await self.store.call(executions.apply_event, ex.id, Event.FAIL, now=at + 1)
        return ex.id


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    keys = {name: ed25519.Ed25519PrivateKey.generate() for name in PEOPLE}
    operators = tmp_path / "authorized_operators"
    operators.write_text(
        "".join(f"{role} {name} {public_key_line(keys[name])}\n" for name, role in PEOPLE.items())
    )
    store = await Store.open(tmp_path / "agentd.db", synchronous="NORMAL")
    ops = StoreOps(store, agent_name="db1", agent_version="0.1", data_dir=tmp_path)
    server = await serve(
        ops,
        ServerConfig(authorized_operators=operators, feed_interval_s=0.05),
        host="127.0.0.1",
        port=0,
        ssl_context=None,
    )
    running = Agent(server, store, keys)
    yield running
    for client in running.clients:
        await client.close()
    server.close()
    await server.wait_closed()
    await store.close()


async def test_list_shows_alerts_and_the_unacked_count(agent: Agent) -> None:
    """alerts.list returns the agent's alerts and how many nobody acknowledged."""
    exec_id = await agent.fail()
    viewer = await agent.login("vic")
    result: AlertsResult = await viewer.call("alerts.list", AlertsQuery())
    assert [(a.execution_id, a.kind) for a in result.alerts] == [(exec_id, "failed")]
    assert result.unacked == 1


async def test_ack_is_audited_and_needs_an_operator(agent: Agent) -> None:
    """A viewer may not acknowledge; an operator's ack is recorded in the audit log."""
    await agent.fail()
    viewer, operator = await agent.login("vic"), await agent.login("alice")
    (alert,) = (await viewer.call("alerts.list", AlertsQuery())).alerts
    with pytest.raises(RemoteError, match="forbidden"):
        await viewer.call("alerts.ack", AlertAck(ids=(alert.id,)))
    acked: AlertsResult = await operator.call("alerts.ack", AlertAck(ids=(alert.id,)))
    assert acked.alerts[0].acked_by == "alice" and acked.unacked == 0
    audit = await operator.call("audit.since", AuditSince(seq=0))
    assert [(e.action, e.target, e.actor) for e in audit.entries if e.action == "alert.ack"] == [
        ("alert.ack", alert.id, "alice")
    ]


async def test_ack_of_unknown_alert_is_not_found(agent: Agent) -> None:
    """An unknown id is refused by name and nothing changes."""
    operator = await agent.login("alice")
    with pytest.raises(RemoteError, match="no alert 'nope'"):
        await operator.call("alerts.ack", AlertAck(ids=("nope",)))


async def test_since_syncs_in_batches_until_done(agent: Agent) -> None:
    """alerts.since pages through every alert once, then reports nothing more."""
    for n in range(3):
        await agent.fail(at=T0 + 60 * n)
    viewer = await agent.login("vic")
    seen, cursor = [], 0
    while True:
        batch: AlertsBatch = await viewer.call("alerts.since", AlertsSince(seq=cursor, limit=2))
        seen += [a.id for a in batch.alerts]
        cursor = batch.next_seq
        if not batch.more:
            break
    assert len(seen) == len(set(seen)) == 3
    assert batch.epoch == agent.store.epoch


async def test_new_alert_is_pushed_on_the_alerts_topic(agent: Agent) -> None:
    """A subscriber hears a new alert without asking."""
    viewer = await agent.login("vic")
    await viewer.call("subscribe", Subscribe(topic="alerts"))
    exec_id = await agent.fail()
    pushed = await viewer.next_event("alerts")
    assert (pushed.execution_id, pushed.kind) == (exec_id, "failed")
