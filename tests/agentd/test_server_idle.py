"""Issue 8: the server's feeds cost an idle agent nothing, and still push every change.

A real server over a real store; ``CountingOps`` is the real ``StoreOps`` with
a count of the store reads the feeds make.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import msgspec

from agentd.server.ops_store import StoreOps
from shared.enums import Role
from shared.models import Job
from shared.protocol import PutJob, RunParams, Subscribe
from tests.agentd import server_support
from tests.agentd.server_support import RunningAgent, StartAgent

start_agent = server_support.start_agent  # the fixture

JOB = Job(name="backup", command="echo hi", cron="0 3 * * *")
FEED_READS = (
    "latest_seq",
    "history_since",
    "job_changes_since",
    "latest_approval_seq",
    "approval_changes_since",
    "latest_alert_seq",
    "alert_changes_since",
    "heartbeat",
)
# Short enough that the old 0.5 s poll would have read dozens of times in QUIET_S.
POLL_S = 0.01
QUIET_S = 0.3


class CountingOps(StoreOps):
    """StoreOps counting the reads the server's feeds make (the reads still happen)."""

    reads: Counter[str]

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if name not in FEED_READS:
            return value
        counter = super().__getattribute__("__dict__").setdefault("reads", Counter())

        async def counted(*args: Any, **kwargs: Any) -> Any:
            counter[name] += 1
            return await value(*args, **kwargs)

        return counted


def reads(agent: RunningAgent) -> Counter[str]:
    ops: Any = agent.ops
    return Counter(ops.__dict__.get("reads", Counter()))


async def quiet_window() -> None:
    # Asserting that nothing happens needs a window to happen in: QUIET_S is 30 polls.
    await asyncio.sleep(QUIET_S)


async def start(start_agent: StartAgent, **config: Any) -> RunningAgent:
    config.setdefault("feed_interval_s", POLL_S)
    config.setdefault("heartbeat_interval_s", POLL_S)
    return await start_agent(ops_class=CountingOps, **config)


async def test_no_feed_reads_the_store_while_nobody_subscribed(start_agent: StartAgent) -> None:
    """With a session logged in but not subscribed, changes and notify() cause no feed reads."""
    agent = await start(start_agent)
    client = await agent.login(Role.ADMIN)
    await client.call("jobs.put", PutJob(job=JOB, expected_version=0))
    await client.call("run", RunParams(job="backup"))
    agent.server.notify()
    await quiet_window()
    assert reads(agent) == Counter()


async def test_first_subscriber_starts_from_now(start_agent: StartAgent) -> None:
    """A change made before the first subscribe is not replayed; the next one is pushed."""
    agent = await start(start_agent)
    client = await agent.login(Role.ADMIN)
    await client.call("jobs.put", PutJob(job=JOB, expected_version=0))
    await client.call("subscribe", Subscribe(topic="jobs"))
    changed = msgspec.structs.replace(JOB, command="echo changed")
    await client.call("jobs.put", PutJob(job=changed, expected_version=1))
    pushed = await client.next_event("jobs")
    assert (pushed.name, pushed.version) == ("backup", 2)


async def test_change_is_pushed_by_notify_without_the_poll(start_agent: StartAgent) -> None:
    """While subscribed, notify() pushes a change at once (the fallback poll is 60 s)."""
    agent = await start(start_agent, feed_interval_s=60.0)
    client = await agent.login(Role.ADMIN)
    await client.call("jobs.put", PutJob(job=JOB, expected_version=0))
    await client.call("subscribe", Subscribe(topic="executions"))
    run = await client.call("run", RunParams(job="backup"))
    started = time.monotonic()
    agent.server.notify()
    assert (await client.next_event("executions")).id == run.execution_id
    assert time.monotonic() - started < 30


async def test_feed_sleeps_again_after_the_last_unsubscribe(start_agent: StartAgent) -> None:
    """Once its only subscriber leaves, a feed stops reading the store."""
    agent = await start(start_agent)
    client = await agent.login(Role.ADMIN)
    await client.call("subscribe", Subscribe(topic="alerts"))
    deadline = time.monotonic() + 10
    while reads(agent)["alert_changes_since"] < 3:  # polling while subscribed
        assert time.monotonic() < deadline, "the alerts feed never polled"
        await asyncio.sleep(POLL_S)
    await client.call("unsubscribe", Subscribe(topic="alerts"))
    agent.server.notify()  # the feed looks again, sees nobody, sleeps
    await asyncio.sleep(POLL_S * 5)
    before = reads(agent)["alert_changes_since"]
    await quiet_window()
    assert reads(agent)["alert_changes_since"] == before


async def test_heartbeat_only_while_subscribed(start_agent: StartAgent) -> None:
    """No heartbeat is computed before a subscribe; after it, one is pushed."""
    agent = await start(start_agent)
    client = await agent.login(Role.VIEWER)
    await quiet_window()
    assert reads(agent)["heartbeat"] == 0
    await client.call("subscribe", Subscribe(topic="heartbeat"))
    beat = await client.next_event("heartbeat")
    assert beat.agent_version == "0.1"
