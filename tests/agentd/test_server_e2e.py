"""End to end over the wire: `squ-agentd init`, `serve`, then a console-side client over wss://
with the pinned fingerprint edits a job, runs it, sees it finish and reads its log."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agentd.server.tls import der_fingerprint
from shared.enums import ExecutionStatus
from shared.identity import public_key_line
from shared.models import Job
from shared.protocol import LogsRead, PutJob, RunParams, Subscribe
from tests.agentd.wsclient import Client
from tests.e2e.agentkit import AgentProc, wait_for


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProc]:
    proc = AgentProc(tmp_path / "data")
    try:
        yield proc
    finally:
        proc.cleanup()


async def test_init_serve_login_run_and_read_log(agent: AgentProc) -> None:
    """A real daemon: pinned wss login, jobs.put, run, the executions push, logs.read."""
    init = agent.cli("init")
    assert init.returncode == 0, init.stderr
    pinned = re.search(r"certificate fingerprint: (SHA256:\S+)", init.stdout)
    assert pinned is not None
    config = agent.data_dir / "agentd.toml"
    config.write_text(config.read_text().replace("# port = 7421", "port = 0"))
    key = ed25519.Ed25519PrivateKey.generate()
    with (agent.data_dir / "authorized_operators").open("a") as f:
        f.write(f"admin alice {public_key_line(key)} alice@laptop\n")
    agent.start()
    # The control socket answers before the wire listens: poll status for the URL.
    url = wait_for(lambda: agent.request("status").get("listen"), what="the wire listening")
    assert url.startswith("wss://127.0.0.1:")

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # pinning below replaces CA validation
    client = await Client.login(url, key, ssl_context=context)
    try:
        der = client.ws.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
        assert der_fingerprint(der) == pinned.group(1)

        job = Job(name="hello", command="echo hi; echo oops >&2")
        await client.call("jobs.put", PutJob(job=job, expected_version=0))
        await client.call("subscribe", Subscribe(topic="executions"))
        run = await client.call("run", RunParams(job="hello"))
        while True:
            ex = await client.next_event("executions")
            if ex.id == run.execution_id and ex.status.is_final:
                break
        assert (ex.status, ex.triggered_by) == (ExecutionStatus.SUCCESS, "alice")
        page = await client.call("logs.read", LogsRead(execution_id=run.execution_id))
        got = {(p.stream, p.data) for p in page.pieces}
        assert got == {("stdout", b"hi\n"), ("stderr", b"oops\n")} and page.complete
    finally:
        await client.close()
