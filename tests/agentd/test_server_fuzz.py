"""Garbage from logged-in and anonymous clients never stops the agent serving others."""

from __future__ import annotations

import json
import logging
import random

import pytest

from shared.enums import Role
from shared.protocol import METHODS, Empty
from tests.agentd import server_support
from tests.agentd.server_support import StartAgent

start_agent = server_support.start_agent  # the fixture


def garbage(rng: random.Random) -> str | bytes:
    """One hostile frame: random bytes, random text, or a request-shaped object gone wrong."""
    kind = rng.randrange(6)
    if kind == 5:
        depth = rng.randrange(1000, 200_000)
        return (
            '{"type":"request","id":1,"method":"jobs.list","params":'
            + "[" * depth
            + "]" * depth
            + "}"
        )
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 200))
    if kind == 1:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(1, 100)))
    if kind == 2:
        return json.dumps([rng.random(), None, {"type": "request"}])
    method = rng.choice([*METHODS, "nope", ""])
    params = rng.choice([{}, {"name": 5}, {"seq": -1}, {"job": {"name": []}}, [], "x", None])
    rid = rng.choice([rng.randrange(2**53), -1, "7", None, 2**60])
    return json.dumps(
        {
            "type": rng.choice(["request", "hello", "event"]),
            "id": rid,
            "method": method,
            "params": params,
        }
    )


async def test_garbage_never_stops_the_agent(
    start_agent: StartAgent, caplog: pytest.LogCaptureFixture
) -> None:
    """300 hostile frames over several connections: no error logged, the next operator served."""
    caplog.set_level(logging.WARNING)
    agent = await start_agent()
    rng = random.Random(20261127)
    for round_ in range(6):
        client = await (agent.login(Role.ADMIN) if round_ % 2 else agent.open())
        for _ in range(50):
            if client.closed.done():
                break
            try:
                await client.send_raw(garbage(rng))
            except Exception:  # the agent closed on us mid-burst: that is a valid answer
                break
    fresh = await agent.login(Role.VIEWER)
    assert (await fresh.call("agent.info", Empty())).name == "db1"
    # Refusals are warnings; an ERROR would mean a traceback (a bug) somewhere.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
