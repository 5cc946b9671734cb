"""The console's link and fleet against a real agent server on 127.0.0.1 (in process).

The server is the real ``agentd.server`` over a real store (no executor: a run
is recorded as pending), so every frame crosses a real socket.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

from agentd.server import ServerConfig, serve
from agentd.server.tls import ensure_certificate, server_context
from console.config import AgentEntry, Inventory, load_inventory, save_inventory
from console.fleet.fleet import Fleet, pack_log_cursor, unpack_log_cursor
from console.fleet.link import Backoff, Link
from console.fleet.mirror import Mirror, RunFilter
from console.fleet.source import (
    AgentStateChanged,
    AgentUnavailable,
    ExecutionsChanged,
    FleetSource,
    LinkState,
)
from shared.enums import Role
from shared.models import Job
from tests.agentd import server_support
from tests.agentd.server_support import RunningAgent, StartAgent

start_agent = server_support.start_agent  # the fixture

FAST = Backoff(initial_s=0.05, max_s=0.3)


async def until(cond: Callable[[], object], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


def inventory_for(tmp_path: Path, *entries: AgentEntry) -> Inventory:
    inventory = Inventory(path=tmp_path / "console" / "fleet.toml", agents=entries)
    save_inventory(inventory)
    return inventory


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    """Delays double from initial_s, stay within [base/2, base], never pass max_s."""
    backoff = Backoff(initial_s=1.0, max_s=8.0)
    rng = random.Random(1)
    for attempt, base in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (10, 8.0)]:
        delays = {backoff.delay_s(attempt, rng) for _ in range(50)}
        assert all(base / 2 <= d <= base for d in delays)
        assert len(delays) > 1  # jittered: a fleet does not reconnect in lockstep


def test_log_cursor_packs_offset_and_skip() -> None:
    """The TUI's one-int log cursor carries the wire's (offset, skip) exactly."""
    for offset, skip in [(0, 0), (16, 0), (10**9, 1024 * 1024), (5, 1)]:
        assert unpack_log_cursor(pack_log_cursor(offset, skip)) == (offset, skip)


def test_fleet_is_a_fleet_source(tmp_path: Path) -> None:
    """Fleet implements the interface the TUI is written against."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    fleet = Fleet(inventory_for(tmp_path), key=ed25519.Ed25519PrivateKey.generate())
    assert isinstance(fleet, FleetSource)


async def test_link_comes_up_and_mirrors_jobs_and_history(
    start_agent: StartAgent, tmp_path: Path
) -> None:
    """Up: the agent's jobs and its executions land in the mirror, each once."""
    agent = await start_agent()
    await agent.ops.put_job(Job(name="backup", command="true"), None, "test")
    first = await agent.ops.run("backup", {}, None, "test")
    mirror = Mirror.open(tmp_path / "mirror.db")
    posted: list[object] = []
    link = Link(AgentEntry(name="db1", url=agent.url), key=agent.keys[Role.ADMIN], mirror=mirror)
    link.post = posted.append
    task = asyncio.create_task(link.run())
    try:
        await until(lambda: mirror.get_run("db1", first) is not None, "the first run mirrored")
        assert link.state.link is LinkState.UP
        assert [j.record.job.name for j in mirror.jobs()] == ["backup"]
        # A change after login is pushed, and the push pulls it in.
        second = await agent.ops.run("backup", {}, None, "test")
        await until(lambda: mirror.get_run("db1", second) is not None, "the pushed run")
        assert mirror.count_runs(RunFilter(agent="db1")) == 2
        changed = [m for m in posted if isinstance(m, ExecutionsChanged)]
        assert {i for m in changed for i in m.ids} == {first, second}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        mirror.close()


async def test_link_reconnects_when_the_agent_comes_back(
    start_agent: StartAgent, tmp_path: Path
) -> None:
    """Down with a reason while the agent is away, up again when it listens again."""
    agent = await start_agent()
    port = agent.server.port
    link = Link(AgentEntry(name="db1", url=agent.url), key=agent.keys[Role.ADMIN], backoff=FAST)
    task = asyncio.create_task(link.run())
    try:
        await link.wait_up(10)
        agent.server.close()
        await agent.server.wait_closed()
        await until(lambda: link.state.link is LinkState.DOWN, "the link to go down")
        await until(lambda: "refused" in link.state.error, "the reason in words")
        config = ServerConfig(authorized_operators=agent.data_dir / "authorized_operators")
        agent.server = await serve(agent.ops, config, host="127.0.0.1", port=port, ssl_context=None)
        await link.wait_up(10)
        assert link.state.error == ""
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_action_on_a_down_agent_fails_at_once(tmp_path: Path) -> None:
    """No waiting on a dead agent: AgentUnavailable names it and why, in well under a second."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    inventory = inventory_for(tmp_path, AgentEntry(name="gone", url="ws://127.0.0.1:9"))
    async with Fleet(inventory, key=ed25519.Ed25519PrivateKey.generate(), backoff=FAST) as fleet:
        (state,) = await fleet.settle(10)
        assert state.link is LinkState.DOWN
        started = time.monotonic()
        try:
            await fleet.trigger("backup", "gone", {})
        except AgentUnavailable as exc:
            assert "gone" in exc.message and "refused" in exc.message
        else:
            raise AssertionError("trigger on a down agent succeeded")
        assert time.monotonic() - started < 0.5


async def test_an_unknown_key_is_auth_failed_with_the_agents_reason(
    start_agent: StartAgent,
) -> None:
    """A key the agent does not know: AUTH_FAILED, the reason shown, retried slowly."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    agent: RunningAgent = await start_agent()
    link = Link(
        AgentEntry(name="db1", url=agent.url),
        key=ed25519.Ed25519PrivateKey.generate(),
        backoff=FAST,
    )
    task = asyncio.create_task(link.run())
    try:
        state = await link.wait_settled(10)
        assert state.link is LinkState.AUTH_FAILED
        assert "unknown_key" in state.error
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_first_use_pins_and_a_changed_certificate_stops_the_link(
    start_agent: StartAgent, tmp_path: Path
) -> None:
    """wss://: the first connection pins in fleet.toml; another certificate is refused for good."""
    cert, key = tmp_path / "tls" / "agent.crt", tmp_path / "tls" / "agent.key"
    (tmp_path / "tls").mkdir()
    fingerprint = ensure_certificate(cert, key, "localhost")
    agent = await start_agent(ssl_context=server_context(cert, key))
    url = f"wss://127.0.0.1:{agent.server.port}"
    inventory = inventory_for(tmp_path, AgentEntry(name="db1", url=url))
    async with Fleet(inventory, key=agent.keys[Role.VIEWER], backoff=FAST) as fleet:
        (state,) = await fleet.settle(10)
        assert state.link is LinkState.UP
    assert load_inventory(inventory.path.parent).get("db1").fingerprint == fingerprint

    wrong = inventory_for(tmp_path, AgentEntry(name="db1", url=url, fingerprint="SHA256:x"))
    link = Link(wrong.get("db1"), key=agent.keys[Role.VIEWER], backoff=FAST)
    await asyncio.wait_for(link.run(), 10)  # returns: a mismatch is never retried
    assert link.state.link is LinkState.PIN_MISMATCH
    assert fingerprint in link.state.error and "SHA256:x" in link.state.error


async def test_heartbeats_become_host_metrics(start_agent: StartAgent) -> None:
    """The agent's heartbeat shows as metrics on the agent's state, with a state message."""
    agent = await start_agent(heartbeat_interval_s=0.1)
    posted: list[object] = []
    link = Link(
        AgentEntry(name="db1", url=agent.url), key=agent.keys[Role.VIEWER], post=posted.append
    )
    task = asyncio.create_task(link.run())
    try:
        await until(lambda: link.state.metrics is not None, "a heartbeat")
        assert link.state.metrics is not None and link.state.metrics.mem_pct > 0
        assert any(isinstance(m, AgentStateChanged) for m in posted)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_history_lost_to_retention_is_recorded_as_a_gap(
    start_agent: StartAgent, tmp_path: Path
) -> None:
    """Rows pruned before the console saw them: the gap is recorded, the rest synced once."""
    from agentd.store import executions as ex_sql
    from shared.enums import ExecutionStatus, Trigger
    from shared.models import Execution

    agent = await start_agent()
    old, new = 1_000_000.0, time.time()
    rows = [
        Execution(
            id=f"01J00000000000000000000{i:03d}",
            job="old" if i < 5 else "new",
            server="db1",
            run_id=f"01J00000000000000000000{i:03d}",
            trigger=Trigger.MANUAL,
            status=ExecutionStatus.SUCCESS,
            created_at=old if i < 5 else new,
            finished_at=old if i < 5 else new,
        )
        for i in range(8)
    ]
    await agent.store.call(ex_sql.insert_executions, rows)
    assert await agent.store.call(ex_sql.prune, older_than=old + 1) == 5
    mirror = Mirror.open(tmp_path / "mirror.db")
    link = Link(AgentEntry(name="db1", url=agent.url), key=agent.keys[Role.VIEWER], mirror=mirror)
    task = asyncio.create_task(link.run())
    try:
        await until(lambda: mirror.count_runs(RunFilter(agent="db1")) == 3, "the kept rows")
        ((epoch, after_seq, floor_seq),) = mirror.gaps("db1")
        assert (epoch, after_seq) == (agent.store.epoch, 0)
        assert floor_seq > 5  # seqs 1-5 are gone on the agent
        assert {r.execution.job for r in mirror.page_runs(RunFilter(), None, 10)} == {"new"}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        mirror.close()
