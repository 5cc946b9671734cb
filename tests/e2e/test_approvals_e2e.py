"""Approvals and audit end to end: a real ``squ-agentd serve`` on 127.0.0.1, the real ``squ`` CLI.

Alice and Bob are both approvers, each with their own console (config dir and
key). Alice asks for runs, Bob approves them; the agent decides everything.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agentd.daemon import db_path
from shared.approvals import ApprovalRequest, ApprovalSign, intent_bytes
from shared.enums import ExecutionStatus
from shared.identity import APPROVAL_NAMESPACE, load_private_key, public_key_line, sign
from tests.agentd.wsclient import Client, RemoteError
from tests.e2e.agentkit import AgentProc, wait_for
from tests.e2e.conftest import _skip_if_missing
from tests.e2e.wirekit import Wire


class Fleet:
    def __init__(self, tmp: Path) -> None:
        self.alice = Wire(tmp / "alice")
        self.bob = Wire(tmp / "bob")
        self.out = tmp / "ran.txt"
        self.vic = ed25519.Ed25519PrivateKey.generate()
        self.agent: AgentProc = self.alice.agent("db1", role="approver")
        (self.agent.data_dir / "authorized_operators").write_text(
            f"approver alice {self.alice.public_line}\napprover bob {self.bob.public_line}\n"
            f"viewer vic {public_key_line(self.vic)}\n"
        )
        added = self.bob.squ("agents", "add", "db1", self.alice.url("db1"))
        assert added.returncode == 0, added.stderr


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    _skip_if_missing()
    kit = Fleet(tmp_path_factory.mktemp("approvals"))
    try:
        yield kit
    finally:
        kit.alice.cleanup()


def add_jobs(fleet: Fleet, filename: str, text: str, names: list[str]) -> None:
    fleet.agent.write_jobs(filename, text)
    fleet.agent.hup()
    wait_for(
        lambda: {j["name"] for j in fleet.agent.request("jobs")} >= set(names) or None,
        what=f"jobs {names} loaded",
    )


def request_run(fleet: Fleet, job: str) -> tuple[str, str]:
    """Alice runs ``job``; returns (execution id, request id) once the request is listed."""
    ran = fleet.alice.squ("run", job, "--on", "db1", "--json")
    assert ran.returncode == 0, ran.stderr
    exec_id = json.loads(ran.stdout)[0]["execution_id"]
    listed = fleet.bob.squ("approvals", "--json")
    assert listed.returncode == 0, listed.stderr
    mine = [r for r in json.loads(listed.stdout) if r["intent"]["execution_id"] == exec_id]
    assert len(mine) == 1, listed.stdout
    return exec_id, mine[0]["intent"]["request_id"]


def status_of(fleet: Fleet, exec_id: str) -> ExecutionStatus:
    return next(e.status for e in fleet.agent.executions() if e.id == exec_id)


def test_valid_approval_runs_the_job_exactly_once(fleet: Fleet) -> None:
    """Bob's approval starts Alice's run once; sending it again is refused as a replay."""
    add_jobs(
        fleet,
        "once.toml",
        f'[job.once]\ncommand = "echo ran >> {fleet.out}"\napproval = "manual"\n',
        ["once"],
    )
    exec_id, request_id = request_run(fleet, "once")
    assert status_of(fleet, exec_id) is ExecutionStatus.AWAITING_APPROVAL
    approved = fleet.bob.squ("approve", request_id)
    assert approved.returncode == 0, approved.stderr
    assert "echo ran" in approved.stderr  # the intent was shown in full first
    wait_for(lambda: status_of(fleet, exec_id) is ExecutionStatus.SUCCESS or None, what="run done")
    again = fleet.bob.squ("approve", request_id)
    assert again.returncode == 1
    assert "[approval_refused]" in again.stderr and "already used" in again.stderr
    assert fleet.out.read_text() == "ran\n"
    assert [e.id for e in fleet.agent.executions("once")] == [exec_id]
    ex = next(e for e in fleet.agent.executions("once"))
    assert (ex.triggered_by, ex.approved_by) == ("alice", "bob")


def test_self_approval_is_refused(fleet: Fleet) -> None:
    """Alice, an approver, cannot approve the run she asked for; it keeps waiting."""
    add_jobs(
        fleet, "self.toml", '[job.selfie]\ncommand = "true"\napproval = "manual"\n', ["selfie"]
    )
    exec_id, request_id = request_run(fleet, "selfie")
    refused = fleet.alice.squ("approve", request_id, "--quiet")
    assert refused.returncode == 1
    assert "alice requested this run and cannot also approve it" in refused.stderr
    assert status_of(fleet, exec_id) is ExecutionStatus.AWAITING_APPROVAL


def test_local_cli_run_also_waits_for_approval(fleet: Fleet) -> None:
    """`squ-agentd run` on the box is gated too: the run waits and gets a request by local:USER."""
    add_jobs(fleet, "local.toml", '[job.loc]\ncommand = "true"\napproval = "manual"\n', ["loc"])
    ran = fleet.agent.cli("run", "loc")
    assert ran.returncode == 0, ran.stderr

    def request() -> dict[str, object] | None:
        listed = fleet.bob.squ("approvals", "--json")
        return next((r for r in json.loads(listed.stdout) if r["intent"]["job"] == "loc"), None)

    found = wait_for(request, what="request for the local run")
    assert str(found["intent"]["requester"]).startswith("local:")  # type: ignore[index]
    (ex,) = fleet.agent.executions("loc")
    assert ex.status is ExecutionStatus.AWAITING_APPROVAL


def test_reject_with_comment_cancels_the_run(fleet: Fleet) -> None:
    """Bob rejects with a comment: the run is cancelled with that reason, never started."""
    add_jobs(fleet, "rej.toml", '[job.rej]\ncommand = "true"\napproval = "manual"\n', ["rej"])
    exec_id, request_id = request_run(fleet, "rej")
    rejected = fleet.bob.squ("reject", request_id, "--comment", "change freeze")
    assert rejected.returncode == 0, rejected.stderr
    ex = next(e for e in fleet.agent.executions("rej") if e.id == exec_id)
    assert ex.status is ExecutionStatus.CANCELLED and "change freeze" in ex.reason
    assert ex.started_at is None


def test_scheduled_run_of_an_always_job_expires_to_skipped(fleet: Fleet) -> None:
    """A scheduled run of an approval=always job waits, then is skipped when its window passes."""
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    add_jobs(
        fleet,
        "always.toml",
        f'[job.always]\ncommand = "echo never >> {fleet.out}.always"\napproval = "always"\n'
        f'at = "{at.isoformat(timespec="seconds")}"\nmisfire_grace_s = 2\n',
        ["always"],
    )
    first = wait_for(lambda: fleet.agent.executions("always") or None, what="scheduled row")[0]
    assert first.status in (ExecutionStatus.AWAITING_APPROVAL, ExecutionStatus.SKIPPED)
    done = wait_for(
        lambda: next((e for e in fleet.agent.executions("always") if e.status.is_final), None),
        what="expiry",
        timeout_s=30,
    )
    assert done.status is ExecutionStatus.SKIPPED
    assert "approval window passed" in done.reason
    assert not Path(f"{fleet.out}.always").exists()


async def refused(client: Client, params: ApprovalSign) -> str:
    with pytest.raises(RemoteError) as caught:
        await client.call("approvals.approve", params)
    assert caught.value.code == "approval_refused", caught.value.message
    return str(caught.value.details["reason"])


async def test_refusals_through_the_real_agent(fleet: Fleet) -> None:
    """Viewer-signed, expired, changed-definition and other-agent approvals are all refused."""
    add_jobs(fleet, "ref.toml", '[job.ref]\ncommand = "true"\napproval = "manual"\n', ["ref"])
    url = fleet.alice.url("db1")
    alice = await Client.login(
        url, load_private_key((fleet.alice.config / "id_ed25519").read_bytes())
    )
    bob_key = load_private_key((fleet.bob.config / "id_ed25519").read_bytes())
    bob = await Client.login(url, bob_key)
    try:

        async def ask(expires_in_s: float = 600) -> ApprovalSign:
            info = await alice.call(
                "approvals.request", ApprovalRequest(job="ref", expires_in_s=expires_in_s)
            )
            return ApprovalSign(
                intent=info.intent,
                signature=sign(bob_key, APPROVAL_NAMESPACE, intent_bytes(info.intent)),
            )

        by_bob = await ask()
        by_vic = ApprovalSign(
            intent=by_bob.intent,
            signature=sign(fleet.vic, APPROVAL_NAMESPACE, intent_bytes(by_bob.intent)),
        )
        assert await refused(bob, by_vic) == "not_approver"
        elsewhere = msgspec.structs.replace(by_bob.intent, agent="db2")
        forged = ApprovalSign(
            intent=elsewhere, signature=sign(bob_key, APPROVAL_NAMESPACE, intent_bytes(elsewhere))
        )
        assert await refused(bob, forged) == "wrong_agent"
        short = await ask(expires_in_s=0.5)
        await asyncio.sleep(max(0.0, short.intent.expires_at - time.time()) + 0.05)
        assert await refused(bob, short) == "expired"
        fleet.agent.write_jobs("ref.toml", '[job.ref]\ncommand = "false"\napproval = "manual"\n')
        fleet.agent.hup()
        wait_for(
            lambda: (
                any(j["name"] == "ref" and j["version"] > 1 for j in fleet.agent.request("jobs"))
                or None
            ),
            what="ref changed",
        )
        assert await refused(bob, by_bob) == "job_changed"
    finally:
        await alice.close()
        await bob.close()


def test_ssh_keygen_signature_is_accepted(fleet: Fleet, tmp_path: Path) -> None:
    """`ssh-keygen -Y sign` over `squ approve --print-intent` is accepted with --signature."""
    add_jobs(fleet, "ssh.toml", '[job.sshk]\ncommand = "true"\napproval = "manual"\n', ["sshk"])
    exec_id, request_id = request_run(fleet, "sshk")
    printed = fleet.bob.squ_process("approve", request_id, "--print-intent")
    assert printed.returncode == 0, printed.stderr
    (tmp_path / "intent").write_bytes(printed.stdout.encode())
    subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-n", APPROVAL_NAMESPACE,
         "-f", str(fleet.bob.config / "id_ed25519"), str(tmp_path / "intent")],
        check=True, capture_output=True,
    )  # fmt: skip
    sent = fleet.bob.squ("approve", request_id, "--signature", str(tmp_path / "intent.sig"))
    assert sent.returncode == 0, sent.stderr
    wait_for(lambda: status_of(fleet, exec_id) is ExecutionStatus.SUCCESS or None, what="run")


def test_scheduled_run_of_an_always_job_runs_once_approved(fleet: Fleet) -> None:
    """A tick of an approval=always job gets a request by `schedule`; once approved it runs."""
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    add_jobs(
        fleet,
        "tick.toml",
        f'[job.tick]\ncommand = "echo tick >> {fleet.out}.tick"\napproval = "always"\n'
        f'at = "{at.isoformat(timespec="seconds")}"\nmisfire_grace_s = 600\n',
        ["tick"],
    )

    def request() -> dict[str, object] | None:
        listed = fleet.bob.squ("approvals", "--json")
        return next((r for r in json.loads(listed.stdout) if r["intent"]["job"] == "tick"), None)

    found = wait_for(request, what="request for the tick", timeout_s=30)
    intent = found["intent"]  # type: ignore[index]
    assert intent["requester"] == "schedule"  # type: ignore[index]
    approved = fleet.bob.squ("approve", intent["request_id"], "--quiet")  # type: ignore[index]
    assert approved.returncode == 0, approved.stderr
    wait_for(
        lambda: status_of(fleet, intent["execution_id"]) is ExecutionStatus.SUCCESS or None,  # type: ignore[index]
        what="approved tick ran",
    )
    assert Path(f"{fleet.out}.tick").read_text() == "tick\n"


def test_approval_signed_through_ssh_agent_is_accepted(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`squ approve --ssh-agent` signs with the key held by a real ssh-agent; the run starts."""
    add_jobs(fleet, "agent.toml", '[job.viaagent]\ncommand = "true"\napproval = "manual"\n',
             ["viaagent"])  # fmt: skip
    exec_id, request_id = request_run(fleet, "viaagent")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: sock.exists() or None, what="ssh-agent socket")
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        key = fleet.bob.config / "id_ed25519"
        subprocess.run(["ssh-add", "-q", str(key)], check=True, env=env, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        sent = fleet.bob.squ("approve", request_id, "--ssh-agent", "--quiet")
        assert sent.returncode == 0, sent.stderr
    finally:
        agent.terminate()
        agent.wait(timeout=10)
    wait_for(lambda: status_of(fleet, exec_id) is ExecutionStatus.SUCCESS or None, what="run")


def test_console_copy_catches_a_consistent_rewrite(fleet: Fleet) -> None:
    """A cut log with a matching head passes the agent's verify, but `squ audit` sees it diverge."""
    synced = fleet.bob.squ("audit")
    assert synced.returncode == 0, synced.stderr
    assert "approval.approved" in synced.stdout
    fleet.agent.stop()
    conn = sqlite3.connect(db_path(fleet.agent.data_dir))
    with conn:
        conn.execute("DROP TRIGGER audit_no_delete")
        last = conn.execute("SELECT MAX(seq) FROM audit").fetchone()[0]
        conn.execute("DELETE FROM audit WHERE seq = ?", [last])
        seq, hash_ = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC").fetchone()
        head = json.dumps({"seq": seq, "hash": hash_}, separators=(",", ":"))
        conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", [head])
    conn.close()
    assert fleet.agent.cli("audit", "verify").returncode == 0  # consistent on its own
    fleet.agent.start()
    diverged = fleet.bob.squ("audit")
    assert diverged.returncode == 1
    assert "db1: AUDIT LOG DIVERGES" in diverged.stderr


def test_audit_verify_finds_a_tampered_byte(fleet: Fleet) -> None:
    """`squ-agentd audit verify` passes on the live log, then names an entry edited on disk."""
    add_jobs(fleet, "aud.toml", '[job.aud]\ncommand = "true"\napproval = "manual"\n', ["aud"])
    request_run(fleet, "aud")
    ok = fleet.agent.cli("audit", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "audit log intact" in ok.stdout
    shown = fleet.agent.cli("audit", "show", "--json")
    entries = json.loads(shown.stdout)
    assert {"approval.requested", "approval.approved", "approval.refused"} <= {
        e["action"] for e in entries
    }
    victim = next(e for e in entries if e["action"] == "approval.approved")
    fleet.agent.stop()
    conn = sqlite3.connect(db_path(fleet.agent.data_dir))
    with conn:  # the previous test may have dropped the other trigger already
        conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    conn.close()
    conn = sqlite3.connect(db_path(fleet.agent.data_dir))
    with conn:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("UPDATE audit SET actor = 'mallory' WHERE seq = ?", [victim["seq"]])
    conn.close()
    bad = fleet.agent.cli("audit", "verify")
    assert bad.returncode == 1
    assert f"TAMPERED at entry {victim['seq']}" in bad.stdout and "edited" in bad.stdout
    time.sleep(0)  # the agent stays stopped: this is the module's last test
