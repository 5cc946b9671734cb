"""A client that stops reading is closed with a reason; the agent's memory stays bounded."""

from __future__ import annotations

import asyncio
import logging

import pytest

from shared.enums import Role
from shared.logframe import MAGIC, Kind, Stream, encode_frame
from shared.models import Job
from shared.protocol import Empty, Limits, PutJob, RunParams, Subscribe
from tests.agentd import server_support
from tests.agentd.server_support import StartAgent

start_agent = server_support.start_agent  # the fixture


async def test_peer_that_stops_reading_is_closed(
    start_agent: StartAgent, caplog: pytest.LogCaptureFixture
) -> None:
    """Pushes to a client that reads nothing fill a bounded queue, then the agent closes it."""
    caplog.set_level(logging.WARNING, logger="agentd.server")
    agent = await start_agent(
        limits=Limits(max_log_chunk_bytes=700_000),
        max_queued_frames=4,
        log_poll_s=0.01,
        close_timeout_s=1.0,
        send_timeout_s=2.0,
        # Keepalive would also close this peer (no pongs); keep it out of the way so the
        # test sees the slow-reader mechanism itself.
        ping_interval_s=300.0,
    )
    client = await agent.login(Role.ADMIN)
    await client.call("jobs.put", PutJob(job=Job(name="noisy", command="true")))
    run = await client.call("run", RunParams(job="noisy"))
    run_dir = agent.data_dir / "runs" / run.execution_id
    run_dir.mkdir(parents=True)
    frame = encode_frame(Kind.DATA, Stream.STDOUT, 1, b"x" * (1024 * 1024 - 64))
    (run_dir / "output.log").write_bytes(
        MAGIC + frame * 32
    )  # 32 MiB: more than the socket buffers hold
    await client.call("subscribe", Subscribe(topic="logs", execution_id=run.execution_id))
    client._reader.cancel()  # from now on nobody reads this socket
    async with asyncio.timeout(45):
        while agent.server.sessions:  # noqa: ASYNC110 - polling the server's state, with a deadline
            await asyncio.sleep(0.05)
    client.ws.transport.abort()
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "peer stopped reading" in messages or "not reading" in messages, messages
    # Another operator is still served.
    other = await agent.login(Role.VIEWER)
    assert (await other.call("agent.info", Empty())).name == "db1"
