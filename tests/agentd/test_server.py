"""The agent's WebSocket server refuses what it must, clearly, and keeps serving everyone else.

Real server on 127.0.0.1:0, real store, real Ed25519 operator keys.
"""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from websockets.exceptions import InvalidStatus

from agentd.server import InsecureListen, ServerConfig, serve
from shared.enums import Role
from shared.identity import AUTH_NAMESPACE, sign
from shared.protocol import (
    ClientHello,
    CloseCode,
    Empty,
    ErrorCode,
    JobsResult,
    Limits,
    RunParams,
    make_client_hello,
)
from tests.agentd import server_support
from tests.agentd.server_support import StartAgent
from tests.agentd.wsclient import Client, Refused, RemoteError, encode

start_agent = server_support.start_agent  # the fixture


async def test_operator_logs_in_and_lists_jobs(start_agent: StartAgent) -> None:
    """A listed key logs in with its role and can call a method."""
    agent = await start_agent()
    client = await agent.login(Role.VIEWER)
    welcome = await client.welcome
    assert (welcome.operator, welcome.role) == ("viewer-op", Role.VIEWER)
    assert await client.call("jobs.list", Empty()) == JobsResult(jobs=[])


async def test_unknown_key_is_refused_and_others_still_served(start_agent: StartAgent) -> None:
    """An unknown key is refused with its fingerprint and 4001; a listed operator still gets in."""
    agent = await start_agent()
    stranger = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(Refused) as caught:
        await Client.login(agent.url, stranger)
    assert caught.value.code == ErrorCode.UNKNOWN_KEY
    assert "is not in authorized_operators" in caught.value.message
    assert caught.value.close is not None and caught.value.close[0] == CloseCode.AUTH_REFUSED
    client = await agent.login(Role.ADMIN)
    assert await client.call("jobs.list", Empty()) == JobsResult(jobs=[])


async def test_bad_signature_is_refused(start_agent: StartAgent) -> None:
    """A proof over other bytes is refused with bad_signature."""
    agent = await start_agent()
    client = await agent.open()
    hello = await client.hello
    key = agent.keys[Role.ADMIN]
    good = make_client_hello(hello, key, client="t")
    forged = msgspec.structs.replace(good, proof=sign(key, AUTH_NAMESPACE, b"something else"))
    await client.send_hello(forged)
    with pytest.raises(Refused) as caught:
        await client.wait_welcome()
    assert caught.value.code == ErrorCode.BAD_SIGNATURE


async def test_expired_proof_is_refused(start_agent: StartAgent) -> None:
    """A proof arriving after the challenge expired is refused with expired_proof."""
    agent = await start_agent(limits=Limits(challenge_ttl_s=0.0))
    with pytest.raises(Refused) as caught:
        await Client.login(agent.url, agent.keys[Role.ADMIN])
    assert caught.value.code == ErrorCode.EXPIRED_PROOF


async def test_replayed_proof_is_refused(start_agent: StartAgent) -> None:
    """A proof captured on one connection is refused on another as replayed_proof."""
    agent = await start_agent()
    first = await agent.open()
    captured = make_client_hello(await first.hello, agent.keys[Role.ADMIN], client="t")
    second = await agent.open()
    await second.hello
    await second.send_hello(captured)
    with pytest.raises(Refused) as caught:
        await second.wait_welcome()
    assert caught.value.code == ErrorCode.REPLAYED_PROOF


async def test_request_before_hello_is_refused(start_agent: StartAgent) -> None:
    """A request before login: unauthenticated, then a 1008 close with the reason."""
    agent = await start_agent()
    client = await agent.open()
    await client.hello
    await client.send_raw('{"type":"request","id":1,"method":"jobs.list"}')
    code, reason = await client.raw_frames_until_close()
    assert (code, reason) == (
        CloseCode.POLICY_VIOLATION,
        "request 'jobs.list' before a successful hello",
    )


async def test_no_hello_in_time_closes(start_agent: StartAgent) -> None:
    """A client that never answers the challenge is closed with 4008."""
    agent = await start_agent(limits=Limits(hello_timeout_s=0.5))
    client = await agent.open()
    code, reason = await client.raw_frames_until_close()
    assert (code, reason) == (CloseCode.HELLO_TIMEOUT, "no hello within 0.5 s")


async def test_bad_version_is_refused(start_agent: StartAgent) -> None:
    """A hello with another protocol version is closed with 4002 naming both versions."""
    agent = await start_agent()
    client = await agent.open()
    good = make_client_hello(await client.hello, agent.keys[Role.ADMIN], client="t")
    await client.send_raw(encode(msgspec.structs.replace(good, version=99)))
    code, reason = await client.raw_frames_until_close()
    assert code == CloseCode.UNSUPPORTED_VERSION
    assert "version 99 is not supported" in reason


async def test_wrong_role_is_forbidden(start_agent: StartAgent) -> None:
    """A viewer may not trigger a run: forbidden, naming both roles; the link stays usable."""
    agent = await start_agent()
    client = await agent.login(Role.VIEWER)
    with pytest.raises(RemoteError) as caught:
        await client.call("run", RunParams(job="backup"))
    assert caught.value.code == ErrorCode.FORBIDDEN
    assert caught.value.message == "run needs role operator; viewer-op is viewer"
    assert await client.call("jobs.list", Empty()) == JobsResult(jobs=[])


async def test_malformed_json_gets_an_error_reply(start_agent: StartAgent) -> None:
    """Malformed JSON after login gets bad_request; the connection stays open."""
    agent = await start_agent()
    client = await agent.login()
    await client.send_raw("{this is not json")
    assert await client.call("jobs.list", Empty()) == JobsResult(jobs=[])
    assert client.errors[0].code == ErrorCode.BAD_REQUEST and client.errors[0].id is None


async def test_unknown_method_and_wrong_types(start_agent: StartAgent) -> None:
    """Unknown method and wrong param types each get their own error code."""
    agent = await start_agent()
    client = await agent.login()
    await client.send_raw('{"type":"request","id":900,"method":"jobs.explode"}')
    await client.send_raw(
        '{"type":"request","id":901,"method":"history.since","params":{"seq":"x"}}'
    )
    unknown = await client.frame_where(type="error", id=900)
    wrong = await client.frame_where(type="error", id=901)
    assert (unknown["code"], unknown["message"]) == ("unknown_method", "no method 'jobs.explode'")
    assert wrong["code"] == "invalid_params" and "params.seq" in wrong["message"]


async def test_oversized_frame_closes_with_1009(start_agent: StartAgent) -> None:
    """A frame over max_frame_bytes is refused by the transport with 1009."""
    agent = await start_agent(limits=Limits(max_frame_bytes=64 * 1024))
    client = await agent.login()
    await client.send_raw('{"type":"request","id":1,"method":"' + "x" * 100_000 + '"}')
    code, _ = await client.raw_frames_until_close()
    assert code == CloseCode.MESSAGE_TOO_BIG


async def test_flood_is_rate_limited_then_closed(start_agent: StartAgent) -> None:
    """Past the burst, requests get rate_limited; a flood past max_refused closes with 4029."""
    agent = await start_agent(limits=Limits(requests_per_s=1, burst=3, max_refused=5))
    client = await agent.login()
    for i in range(1, 20):
        await client.send_raw(f'{{"type":"request","id":{1000 + i},"method":"jobs.list"}}')
    code, reason = await client.raw_frames_until_close()
    assert code == CloseCode.FLOOD
    assert "refused requests in a row" in reason
    assert (await client.frame_where(type="error", id=1004))["code"] == ErrorCode.RATE_LIMITED


async def test_connection_cap_answers_503(start_agent: StartAgent) -> None:
    """Past max_connections a new connection gets HTTP 503 before any WebSocket."""
    agent = await start_agent(max_connections=2)
    await agent.login()
    await agent.login()
    with pytest.raises(InvalidStatus) as caught:
        await Client.open(agent.url)
    assert caught.value.response.status_code == 503


async def test_plain_ws_off_loopback_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """serve() refuses ws:// on a non-loopback address before listening."""
    config = ServerConfig(authorized_operators=tmp_path / "ops")
    with pytest.raises(InsecureListen, match="only loopback"):
        await serve(object(), config, host="0.0.0.0", port=0, ssl_context=None)  # type: ignore[arg-type]


async def test_handler_bug_is_internal_and_server_survives(start_agent: StartAgent) -> None:
    """A handler that raises a non-SquError gives 'internal' for that call only."""
    from agentd.server.ops_store import StoreOps

    class Broken(StoreOps):
        async def list_jobs(self):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    agent = await start_agent(ops_class=Broken)
    client = await agent.login()
    with pytest.raises(RemoteError) as caught:
        await client.call("jobs.list", Empty())
    assert caught.value.code == ErrorCode.INTERNAL and "boom" not in caught.value.message
    assert (await client.call("agent.info", Empty())).name == "db1"


async def test_second_hello_after_login_closes(start_agent: StartAgent) -> None:
    """A hello on an open connection is a violation that closes it."""
    agent = await start_agent()
    client = await agent.login()
    hello = ClientHello(version=1, client="x", public_key="k", challenge="c", proof="p")
    await client.send_raw(encode(hello))
    code, _ = await client.raw_frames_until_close()
    assert code == CloseCode.POLICY_VIOLATION


async def test_broken_operators_file_refuses_with_reason(start_agent: StartAgent) -> None:
    """A broken authorized_operators refuses every login, naming file and line (fail closed)."""
    agent = await start_agent()
    path = agent.server.config.authorized_operators
    path.write_text(path.read_text() + "superuser eve ssh-ed25519 AAAA\n")
    with pytest.raises(Refused) as caught:
        await Client.login(agent.url, agent.keys[Role.ADMIN])
    assert "authorized_operators:5: unknown role 'superuser'" in caught.value.message


async def test_many_concurrent_logins(start_agent: StartAgent) -> None:
    """30 operators logging in at once all get in and are served."""
    agent = await start_agent()
    clients = await asyncio.gather(*(agent.login(Role.VIEWER) for _ in range(30)))
    infos = await asyncio.gather(*(c.call("agent.info", Empty()) for c in clients))
    assert {i.name for i in infos} == {"db1"} and len(agent.server.sessions) == 30
