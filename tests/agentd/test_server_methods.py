"""Every method and topic against a real server over a real store (StoreOps)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from shared.enums import ExecutionStatus, Role
from shared.logframe import MAGIC, Kind, Stream, encode_frame
from shared.models import Job
from shared.protocol import (
    DeleteJob,
    Empty,
    ErrorCode,
    ExecutionId,
    ExecutionsQuery,
    HistorySince,
    JobName,
    LogsRead,
    PutJob,
    RunParams,
    ScriptPut,
    ScriptRef,
    Subscribe,
)
from tests.agentd import server_support
from tests.agentd.server_support import RunningAgent, StartAgent
from tests.agentd.wsclient import Client, RemoteError

start_agent = server_support.start_agent  # the fixture

JOB = Job(name="backup", command="echo hi", cron="0 3 * * *")


async def with_job(start_agent: StartAgent, **config: object) -> tuple[RunningAgent, Client]:
    agent = await start_agent(**config)
    client = await agent.login(Role.ADMIN)
    await client.call("jobs.put", PutJob(job=JOB, expected_version=0))
    return agent, client


async def test_put_then_get_job(start_agent: StartAgent) -> None:
    """jobs.put stores the job as version 1 by the operator; jobs.get returns it."""
    _agent, client = await with_job(start_agent)
    record = await client.call("jobs.get", JobName(name="backup"))
    assert (record.job, record.version, record.updated_by) == (JOB, 1, "admin-op")


async def test_stale_edit_names_who_and_when(start_agent: StartAgent) -> None:
    """An edit based on an old version is refused naming who changed the job."""
    _agent, client = await with_job(start_agent)
    edit = msgspec.structs.replace(JOB, command="echo 2")
    await client.call("jobs.put", PutJob(job=edit, expected_version=1))
    late = msgspec.structs.replace(JOB, command="echo 3")
    with pytest.raises(RemoteError) as caught:
        await client.call("jobs.put", PutJob(job=late, expected_version=1))
    assert caught.value.code == ErrorCode.CONFLICT
    assert (
        "was changed by admin-op" in caught.value.message
        and "now version 2" in caught.value.message
    )


async def test_invalid_job_is_refused_by_parse_job(start_agent: StartAgent) -> None:
    """A typed but semantically bad job (bad cron) is refused with the field named."""
    agent = await start_agent()
    client = await agent.login(Role.ADMIN)
    with pytest.raises(RemoteError) as caught:
        await client.call("jobs.put", PutJob(job=Job(name="x", command="true", cron="61 * * * *")))
    assert caught.value.code in (ErrorCode.INVALID_JOB, ErrorCode.INVALID_SCHEDULE)
    assert "cron" in caught.value.message


async def test_enable_disable_and_delete(start_agent: StartAgent) -> None:
    """jobs.disable / enable flip the flag; jobs.delete with a stale version is refused."""
    agent, client = await with_job(start_agent)
    operator = await agent.login(Role.OPERATOR)
    disabled = await operator.call("jobs.disable", JobName(name="backup"))
    assert disabled.job.enabled is False and disabled.version == 2
    assert (await operator.call("jobs.enable", JobName(name="backup"))).job.enabled is True
    with pytest.raises(RemoteError) as caught:
        await client.call("jobs.delete", DeleteJob(name="backup", expected_version=1))
    assert caught.value.code == ErrorCode.CONFLICT
    await client.call("jobs.delete", DeleteJob(name="backup", expected_version=3))
    with pytest.raises(RemoteError) as gone:
        await client.call("jobs.get", JobName(name="backup"))
    assert gone.value.code == ErrorCode.UNKNOWN_JOB


async def test_run_returns_execution_id_and_pushes_change(start_agent: StartAgent) -> None:
    """run returns the new execution's id, and subscribers get an executions event for it."""
    agent, client = await with_job(start_agent, feed_interval_s=0.05)
    watcher = await agent.login(Role.VIEWER)
    await watcher.call("subscribe", Subscribe(topic="executions"))
    result = await client.call("run", RunParams(job="backup"))
    pushed = await watcher.next_event("executions")
    assert pushed.id == result.execution_id and pushed.triggered_by == "admin-op"
    got = await watcher.call("executions.get", ExecutionId(execution_id=result.execution_id))
    assert got.status == ExecutionStatus.PENDING


async def test_run_unknown_parameter_is_refused(start_agent: StartAgent) -> None:
    """A run with a parameter the job does not declare is refused, no execution made."""
    _agent, client = await with_job(start_agent)
    with pytest.raises(RemoteError) as caught:
        await client.call("run", RunParams(job="backup", params={"nope": "1"}))
    assert caught.value.code in (
        ErrorCode.INVALID_PARAMETER,
        ErrorCode.INVALID_JOB,
        ErrorCode.ERROR,
    )
    assert (await client.call("executions.query", ExecutionsQuery())).executions == []


async def test_run_for_another_target_is_refused(start_agent: StartAgent) -> None:
    """A run aimed at another server is refused naming this agent."""
    _agent, client = await with_job(start_agent)
    with pytest.raises(RemoteError) as caught:
        await client.call("run", RunParams(job="backup", target="web9"))
    assert "this agent is 'db1', not 'web9'" in caught.value.message


async def test_cancel_and_query(start_agent: StartAgent) -> None:
    """cancel moves a pending execution to cancelled; a second cancel is illegal_transition."""
    _agent, client = await with_job(start_agent)
    run = await client.call("run", RunParams(job="backup"))
    await client.call("cancel", ExecutionId(execution_id=run.execution_id))
    rows = (await client.call("executions.query", ExecutionsQuery(job="backup"))).executions
    assert [(r.id, r.status) for r in rows] == [(run.execution_id, ExecutionStatus.CANCELLED)]
    with pytest.raises(RemoteError) as caught:
        await client.call("cancel", ExecutionId(execution_id=run.execution_id))
    assert caught.value.code == ErrorCode.ILLEGAL_TRANSITION


async def test_history_since_batches_until_done(start_agent: StartAgent) -> None:
    """history.since pages through every change in batches, ending with more=False."""
    _agent, client = await with_job(start_agent)
    made = [(await client.call("run", RunParams(job="backup"))).execution_id for _ in range(7)]
    seen: list[str] = []
    cursor, epoch = 0, None
    while True:
        batch = await client.call("history.since", HistorySince(seq=cursor, limit=3))
        epoch = epoch or batch.epoch
        assert batch.epoch == epoch and batch.floor_seq == 1
        seen += [e.id for e in batch.executions]
        cursor = batch.next_seq
        if not batch.more:
            break
    assert seen == made


def write_log(data_dir: Path, exec_id: str, frames: list[tuple[Stream, bytes]], done: bool) -> None:
    run_dir = data_dir / "runs" / exec_id
    run_dir.mkdir(parents=True)
    body = b"".join(encode_frame(Kind.DATA, s, 1_000_000, d) for s, d in frames)
    (run_dir / "output.log").write_bytes(MAGIC + body)
    if done:
        (run_dir / "exit.json").write_text("{}")


async def test_logs_read_pages_big_frames_without_loss(start_agent: StartAgent) -> None:
    """logs.read splits frames larger than a chunk and every byte arrives once, in order."""
    agent, client = await with_job(start_agent)
    run = await client.call("run", RunParams(job="backup"))
    out = bytes(range(256)) * 1200  # 300 KiB in one frame: larger than the chunk
    write_log(
        agent.data_dir, run.execution_id, [(Stream.STDOUT, out), (Stream.STDERR, b"oops\n")], True
    )
    got: dict[str, bytes] = {"stdout": b"", "stderr": b""}
    offset, skip = 0, 0
    for _ in range(20):
        page = await client.call(
            "logs.read",
            LogsRead(execution_id=run.execution_id, offset=offset, skip=skip, limit=100_000),
        )
        assert sum(len(p.data) for p in page.pieces) <= 100_000
        for piece in page.pieces:
            got[piece.stream] += piece.data
        offset, skip = page.next_offset, page.next_skip
        if page.eof:
            break
    assert got == {"stdout": out, "stderr": b"oops\n"} and page.complete


async def test_logs_read_unknown_execution(start_agent: StartAgent) -> None:
    """logs.read of an unknown execution is unknown_execution."""
    agent = await start_agent()
    client = await agent.login(Role.VIEWER)
    with pytest.raises(RemoteError) as caught:
        await client.call("logs.read", LogsRead(execution_id="01NOPE"))
    assert caught.value.code == ErrorCode.UNKNOWN_EXECUTION


async def test_logs_subscription_pushes_chunks(start_agent: StartAgent) -> None:
    """Subscribing to an execution's logs pushes its bytes as LogChunk events."""
    agent, client = await with_job(start_agent, log_poll_s=0.05)
    run = await client.call("run", RunParams(job="backup"))
    write_log(agent.data_dir, run.execution_id, [(Stream.STDOUT, b"hello\n")], True)
    await client.call("subscribe", Subscribe(topic="logs", execution_id=run.execution_id))
    chunk = await client.next_event("logs")
    assert chunk.execution_id == run.execution_id
    assert [(p.stream, p.data) for p in chunk.pieces] == [("stdout", b"hello\n")]


async def test_subscribe_checks_topic(start_agent: StartAgent) -> None:
    """Unknown topics, and logs without an execution id, are refused."""
    agent = await start_agent()
    client = await agent.login(Role.VIEWER)
    with pytest.raises(RemoteError, match="no topic 'weather'"):
        await client.call("subscribe", Subscribe(topic="weather"))
    with pytest.raises(RemoteError, match="needs an execution_id"):
        await client.call("subscribe", Subscribe(topic="logs"))


async def test_heartbeat_is_pushed_with_host_metrics(start_agent: StartAgent) -> None:
    """A heartbeat subscriber receives host metrics from psutil."""
    agent = await start_agent(heartbeat_interval_s=0.05)
    client = await agent.login(Role.VIEWER)
    await client.call("subscribe", Subscribe(topic="heartbeat"))
    beat = await client.next_event("heartbeat")
    assert beat.agent == "db1" and beat.memory_total_bytes > 0 and 0 <= beat.disk_percent <= 100


async def test_jobs_topic_pushes_changes(start_agent: StartAgent) -> None:
    """A jobs subscriber hears about a job edit with its new version and author."""
    agent, client = await with_job(start_agent, feed_interval_s=0.05)
    watcher = await agent.login(Role.VIEWER)
    await watcher.call("subscribe", Subscribe(topic="jobs"))
    await client.call("jobs.disable", JobName(name="backup"))
    change = await watcher.next_event("jobs")
    assert (change.name, change.version, change.by) == ("backup", 2, "admin-op")


async def test_unsubscribe_stops_pushes(start_agent: StartAgent) -> None:
    """After unsubscribe, no executions events arrive (checked with a later subscribed probe)."""
    agent, client = await with_job(start_agent, feed_interval_s=0.05)
    watcher = await agent.login(Role.VIEWER)
    await watcher.call("subscribe", Subscribe(topic="executions"))
    await watcher.call("unsubscribe", Subscribe(topic="executions"))
    probe = await agent.login(Role.VIEWER)
    await probe.call("subscribe", Subscribe(topic="executions"))
    await client.call("run", RunParams(job="backup"))
    await probe.next_event("executions")  # the feed has delivered this change
    assert watcher.events.empty()


async def test_scripts_are_content_addressed(start_agent: StartAgent) -> None:
    """scripts.put returns name@sha256; get by ref or by name returns the content; list has it."""
    agent = await start_agent()
    client = await agent.login(Role.ADMIN)
    info = await client.call("scripts.put", ScriptPut(name="rotate", content="#!/bin/sh\necho r\n"))
    assert info.ref == f"rotate@sha256:{info.sha256}" and info.created_by == "admin-op"
    again = await client.call(
        "scripts.put", ScriptPut(name="rotate", content="#!/bin/sh\necho r\n")
    )
    assert again == info
    assert (
        await client.call("scripts.get", ScriptRef(ref=info.ref))
    ).content == "#!/bin/sh\necho r\n"
    assert (await client.call("scripts.get", ScriptRef(ref="rotate"))).info == info
    assert (await client.call("scripts.list", Empty())).scripts == [info]
    with pytest.raises(RemoteError) as caught:
        await client.call("scripts.get", ScriptRef(ref="nothing"))
    assert caught.value.code == ErrorCode.UNKNOWN_SCRIPT


async def test_agent_info(start_agent: StartAgent) -> None:
    """agent.info names the agent, the protocol version and the store's epoch."""
    agent = await start_agent()
    client = await agent.login(Role.VIEWER)
    info = await client.call("agent.info", Empty())
    assert (info.name, info.protocol_version, info.epoch) == ("db1", 1, agent.store.epoch)


async def test_job_changes_call_the_daemons_reload(start_agent: StartAgent) -> None:
    """put, disable and delete each call on_jobs_changed so the scheduler sees the edit."""
    from agentd.server.ops_store import StoreOps

    calls: list[str] = []

    class Watched(StoreOps):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

            async def reload() -> None:
                calls.append("reload")

            self.on_jobs_changed = reload

    agent = await start_agent(ops_class=Watched)
    client = await agent.login(Role.ADMIN)
    await client.call("jobs.put", PutJob(job=JOB, expected_version=0))
    await client.call("jobs.disable", JobName(name="backup"))
    await client.call("jobs.delete", DeleteJob(name="backup"))
    assert calls == ["reload"] * 3


async def test_notify_pushes_without_waiting_for_the_poll(start_agent: StartAgent) -> None:
    """Server.notify() wakes the feed: the change is pushed long before the 60 s poll."""
    agent, client = await with_job(start_agent, feed_interval_s=60.0)
    watcher = await agent.login(Role.VIEWER)
    await watcher.call("subscribe", Subscribe(topic="executions"))
    run = await client.call("run", RunParams(job="backup"))
    agent.server.notify()
    assert (await watcher.next_event("executions")).id == run.execution_id


async def test_close_tells_clients_the_agent_is_stopping(start_agent: StartAgent) -> None:
    """Server.close() closes every connection with 1001 and a reason."""
    agent = await start_agent()
    client = await agent.login(Role.VIEWER)
    agent.server.close()
    assert await client.raw_frames_until_close() == (1001, "agent stopping")
