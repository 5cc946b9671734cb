"""Approvals over the wire against a real agent server (real store, keys, socket on 127.0.0.1).

The agent decides: every refusal here comes from agentd checking a signed run
intent, never from the client.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from agentd.server import Server, ServerConfig, serve
from agentd.server.ops_store import StoreOps
from agentd.store import Store
from shared.approvals import (
    ApprovalId,
    ApprovalInfo,
    ApprovalRequest,
    ApprovalSign,
    ApprovalsQuery,
    ApprovalWithdraw,
    RunIntent,
    intent_bytes,
)
from shared.audit import AuditSince
from shared.enums import Approval, ExecutionStatus
from shared.identity import APPROVAL_NAMESPACE, public_key_line, sign
from shared.models import Job
from shared.protocol import Empty, ExecutionId, PutJob, RunParams, Subscribe
from tests.agentd.wsclient import Client, RemoteError

PEOPLE = {"alice": "operator", "bob": "approver", "carol": "admin", "vic": "viewer"}
JOB = Job(name="deploy", command="echo deploying", approval=Approval.MANUAL)


@dataclass
class Agent:
    server: Server
    store: Store
    keys: dict[str, ed25519.Ed25519PrivateKey]
    clients: list[Client] = field(default_factory=list)

    async def login(self, who: str) -> Client:
        url = f"ws://127.0.0.1:{self.server.port}"
        client = await Client.login(url, self.keys[who])
        self.clients.append(client)
        return client


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
        ServerConfig(authorized_operators=operators),
        host="127.0.0.1",
        port=0,
        ssl_context=None,
    )
    running = Agent(server, store, keys)
    admin = await running.login("carol")
    await admin.call("jobs.put", PutJob(job=JOB, expected_version=0))
    yield running
    for client in running.clients:
        await client.close()
    server.close()
    await server.wait_closed()
    await store.close()


async def request(agent: Agent, who: str = "alice", **fields: Any) -> ApprovalInfo:
    client = await agent.login(who)
    info: ApprovalInfo = await client.call(
        "approvals.request", ApprovalRequest(job="deploy", **fields)
    )
    return info


def signed(intent: RunIntent, key: ed25519.Ed25519PrivateKey) -> ApprovalSign:
    return ApprovalSign(
        intent=intent, signature=sign(key, APPROVAL_NAMESPACE, intent_bytes(intent))
    )


async def refusal(client: Client, method: str, params: Any) -> str:
    with pytest.raises(RemoteError) as caught:
        await client.call(method, params)
    assert caught.value.code == "approval_refused", caught.value.message
    return str(caught.value.details["reason"])


async def test_request_waits_in_awaiting_approval(agent: Agent) -> None:
    """A request records an execution in awaiting_approval and a pending intent for this agent."""
    info = await request(agent, params={})
    client = await agent.login("bob")
    ex = await client.call("executions.get", ExecutionId(execution_id=info.intent.execution_id))
    assert ex.status is ExecutionStatus.AWAITING_APPROVAL
    assert (info.state, info.intent.agent, info.intent.requester) == ("pending", "db1", "alice")
    assert info.definition == JOB


async def test_plain_run_of_an_approval_job_waits(agent: Agent) -> None:
    """``run`` of a job with approval=manual does not run: it waits for approval."""
    client = await agent.login("alice")
    result = await client.call("run", RunParams(job="deploy"))
    ex = await client.call("executions.get", ExecutionId(execution_id=result.execution_id))
    assert ex.status is ExecutionStatus.AWAITING_APPROVAL
    pending = await client.call("approvals.list", ApprovalsQuery())
    assert [a.intent.execution_id for a in pending.approvals] == [result.execution_id]


async def test_valid_approval_queues_the_run(agent: Agent) -> None:
    """An approver's signed intent is accepted: the run is queued, approved_by the signer."""
    info = await request(agent)
    bob = await agent.login("bob")
    done = await bob.call("approvals.approve", signed(info.intent, agent.keys["bob"]))
    assert (done.state, done.decided_by) == ("approved", "bob")
    ex = await bob.call("executions.get", ExecutionId(execution_id=info.intent.execution_id))
    assert (ex.status, ex.approved_by) == (ExecutionStatus.QUEUED, "bob")


async def test_self_approval_is_refused(agent: Agent) -> None:
    """The requester cannot approve their own request, even as admin."""
    info = await request(agent, who="carol")
    carol = await agent.login("carol")
    reason = await refusal(carol, "approvals.approve", signed(info.intent, agent.keys["carol"]))
    assert reason == "self_approval"


async def test_viewer_signature_is_refused(agent: Agent) -> None:
    """An intent signed by a viewer's key is refused even when sent by an approver."""
    info = await request(agent)
    bob = await agent.login("bob")
    reason = await refusal(bob, "approvals.approve", signed(info.intent, agent.keys["vic"]))
    assert reason == "not_approver"


async def test_viewer_cannot_call_approve(agent: Agent) -> None:
    """The approve method itself needs the approver role."""
    info = await request(agent)
    vic = await agent.login("vic")
    with pytest.raises(RemoteError) as caught:
        await vic.call("approvals.approve", signed(info.intent, agent.keys["vic"]))
    assert caught.value.code == "forbidden"


async def test_replayed_approval_is_refused(agent: Agent) -> None:
    """The same signed approval sent twice is accepted once, then refused as a replay."""
    info = await request(agent)
    bob = await agent.login("bob")
    approval = signed(info.intent, agent.keys["bob"])
    await bob.call("approvals.approve", approval)
    assert await refusal(bob, "approvals.approve", approval) == "replayed"


async def test_expired_request_is_refused(agent: Agent) -> None:
    """After its expiry an intent cannot be approved."""
    info = await request(agent, expires_in_s=0.2)
    bob = await agent.login("bob")
    approval = signed(info.intent, agent.keys["bob"])
    # The expiry is a wall-clock instant: wait until it has passed, no longer.
    await asyncio.sleep(max(0.0, info.intent.expires_at - time.time()) + 0.01)
    assert await refusal(bob, "approvals.approve", approval) == "expired"


async def test_changed_definition_is_refused(agent: Agent) -> None:
    """An approval for a job whose definition changed since the request is refused."""
    info = await request(agent)
    carol = await agent.login("carol")
    changed = msgspec.structs.replace(JOB, command="rm -rf /srv/app")
    await carol.call("jobs.put", PutJob(job=changed, expected_version=1))
    bob = await agent.login("bob")
    assert await refusal(bob, "approvals.approve", signed(info.intent, agent.keys["bob"])) == (
        "job_changed"
    )


async def test_intent_for_another_agent_is_refused(agent: Agent) -> None:
    """A properly signed intent naming another agent is refused by this one."""
    info = await request(agent)
    elsewhere = msgspec.structs.replace(info.intent, agent="db2")
    bob = await agent.login("bob")
    reason = await refusal(bob, "approvals.approve", signed(elsewhere, agent.keys["bob"]))
    assert reason == "wrong_agent"


async def test_altered_parameters_are_refused(agent: Agent) -> None:
    """An approver cannot sign different parameters than were requested."""
    info = await request(agent, params={})
    forged = msgspec.structs.replace(info.intent, params={"x": "1"})
    bob = await agent.login("bob")
    reason = await refusal(bob, "approvals.approve", signed(forged, agent.keys["bob"]))
    assert reason == "intent_mismatch"


async def test_ssh_keygen_signature_is_accepted(agent: Agent, tmp_path: Path) -> None:
    """An intent signed with ``ssh-keygen -Y sign -n approval@squ-cron`` is accepted."""
    info = await request(agent)
    key_file = tmp_path / "bob_key"
    key_file.write_bytes(
        agent.keys["bob"].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    intent_file = tmp_path / "intent"
    intent_file.write_bytes(intent_bytes(info.intent))
    argv = ["ssh-keygen", "-q", "-Y", "sign", "-n", APPROVAL_NAMESPACE, "-f", str(key_file)]
    await asyncio.to_thread(
        subprocess.run, [*argv, str(intent_file)], check=True, capture_output=True
    )
    bob = await agent.login("bob")
    sig = (tmp_path / "intent.sig").read_text()
    done = await bob.call("approvals.approve", ApprovalSign(intent=info.intent, signature=sig))
    assert done.state == "approved"


async def test_reject_with_comment_cancels_the_run(agent: Agent) -> None:
    """A rejection records the comment and the waiting run becomes cancelled."""
    info = await request(agent)
    bob = await agent.login("bob")
    done = await bob.call(
        "approvals.reject", ApprovalWithdraw(id=info.intent.request_id, comment="not on Friday")
    )
    assert (done.state, done.decision_comment) == ("rejected", "not on Friday")
    ex = await bob.call("executions.get", ExecutionId(execution_id=info.intent.execution_id))
    assert ex.status is ExecutionStatus.CANCELLED and "not on Friday" in ex.reason


async def test_requester_cancels_own_request(agent: Agent) -> None:
    """The requester withdraws a pending request; another operator may not."""
    info = await request(agent)
    alice = agent.clients[-1]
    bob = await agent.login("bob")
    params = ApprovalWithdraw(id=info.intent.request_id)
    assert await refusal(bob, "approvals.cancel", params) == "not_requester"
    done = await alice.call("approvals.cancel", params)
    assert done.state == "cancelled"


async def test_refusals_and_decisions_are_audited(agent: Agent) -> None:
    """Requests, refusals and approvals each append an entry, and the chain verifies."""
    info = await request(agent)
    bob = await agent.login("bob")
    await refusal(bob, "approvals.approve", signed(info.intent, agent.keys["vic"]))
    await bob.call("approvals.approve", signed(info.intent, agent.keys["bob"]))
    batch = await bob.call("audit.since", AuditSince(seq=0))
    actions = [(e.action, e.actor) for e in batch.entries]
    assert actions == [
        ("job.put", "carol"),
        ("approval.requested", "alice"),
        ("approval.refused", "bob"),
        ("approval.approved", "bob"),
    ]
    assert batch.entries[2].detail["reason"] == "not_approver"
    assert batch.entries[1].origin.startswith("wire 127.0.0.1:")
    report = await bob.call("audit.verify", Empty())
    assert (report.ok, report.checked) == (True, 4)


async def test_approvals_topic_pushes_decisions(agent: Agent) -> None:
    """A subscriber to the approvals topic hears of a new request."""
    bob = await agent.login("bob")
    await bob.call("subscribe", Subscribe(topic="approvals"))
    info = await request(agent)
    pushed = await bob.next_event("approvals")
    assert pushed.intent.request_id == info.intent.request_id


async def test_get_unknown_request_is_not_found(agent: Agent) -> None:
    """approvals.get of an unknown id says so."""
    bob = await agent.login("bob")
    with pytest.raises(RemoteError) as caught:
        await bob.call("approvals.get", ApprovalId(id="nope"))
    assert caught.value.code == "not_found" and "nope" in caught.value.message


async def test_refused_login_is_audited(agent: Agent) -> None:
    """A login with an unknown key appends an auth.refused entry naming its fingerprint."""
    from shared.identity import fingerprint
    from tests.agentd.wsclient import Refused

    stranger = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(Refused):
        await Client.login(f"ws://127.0.0.1:{agent.server.port}", stranger)
    bob = await agent.login("bob")
    deadline = time.monotonic() + 10
    while True:
        batch = await bob.call("audit.since", AuditSince(seq=0, action="auth.refused"))
        if batch.entries or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert [e.actor for e in batch.entries] == [fingerprint(stranger)]
    assert batch.entries[0].detail["code"] == "unknown_key"


async def test_approval_of_a_cancelled_run_is_refused(agent: Agent) -> None:
    """If the waiting run was cancelled, a late approval is refused (not an internal error)."""
    info = await request(agent)
    alice = agent.clients[-1]
    await alice.call("cancel", ExecutionId(execution_id=info.intent.execution_id))
    bob = await agent.login("bob")
    assert await refusal(bob, "approvals.approve", signed(info.intent, agent.keys["bob"])) == (
        "not_pending"
    )
