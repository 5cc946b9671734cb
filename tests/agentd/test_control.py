"""The control socket: newline-delimited JSON requests over a real Unix socket."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from agentd import control
from shared.errors import UnknownJob


async def _echo(params: dict[str, Any]) -> dict[str, Any]:
    return {"echo": params}


async def _unknown(params: dict[str, Any]) -> None:
    raise UnknownJob(str(params.get("job")), "db1")


async def _crash(params: dict[str, Any]) -> None:
    raise RuntimeError("boom")


async def _slow(params: dict[str, Any]) -> str:
    await asyncio.sleep(30)
    return "late"


@pytest.fixture
async def server(tmp_path: Path):
    srv = control.ControlServer(
        tmp_path / "agentd.sock",
        {"echo": _echo, "unknown": _unknown, "crash": _crash, "slow": _slow},
    )
    await srv.start()
    yield srv
    await srv.close()


async def _raw(path: Path, line: bytes) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(line)
    await writer.drain()
    reply = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return json.loads(reply)


async def test_socket_is_private(server: control.ControlServer) -> None:
    """The socket file is created with mode 0600."""
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600


async def test_request_gets_result(server: control.ControlServer) -> None:
    """A request gets a reply with the same id, ok and the handler's result."""
    reply = await asyncio.to_thread(control.request, server.path, "echo", {"a": 1})
    assert reply == {"echo": {"a": 1}}


async def test_squ_error_becomes_error_reply(server: control.ControlServer) -> None:
    """A SquError from a handler comes back as its code and message, re-raised by the client."""
    with pytest.raises(control.RemoteError) as info:
        await asyncio.to_thread(control.request, server.path, "unknown", {"job": "backup"})
    assert info.value.code == "unknown_job"
    assert "no job named 'backup' on agent db1" in info.value.message


async def test_not_json_is_bad_request(server: control.ControlServer) -> None:
    """A line that is not JSON gets a bad_request reply naming the problem."""
    reply = await _raw(server.path, b"{nope\n")
    assert reply["ok"] is False
    assert reply["error"]["code"] == "bad_request"
    assert "not JSON" in reply["error"]["message"]


async def test_unknown_method_names_the_known_ones(server: control.ControlServer) -> None:
    """An unknown method is refused with the list of known methods."""
    reply = await _raw(server.path, b'{"id": 7, "method": "explode"}\n')
    assert reply["id"] == 7
    assert reply["error"]["code"] == "bad_request"
    assert "echo" in reply["error"]["message"]


async def test_handler_crash_is_internal_and_server_survives(
    server: control.ControlServer,
) -> None:
    """An unexpected exception becomes 'internal' without details, and the server keeps serving."""
    reply = await _raw(server.path, b'{"id": 1, "method": "crash"}\n')
    assert reply["error"] == {"code": "internal", "message": "internal error (see the agent's log)"}
    assert await asyncio.to_thread(control.request, server.path, "echo") == {"echo": {}}


async def test_slow_request_does_not_block_others(server: control.ControlServer) -> None:
    """A long request on one connection leaves other connections served at once."""
    _reader, writer = await asyncio.open_unix_connection(str(server.path))
    writer.write(b'{"id": 1, "method": "slow"}\n')
    await writer.drain()
    reply = await asyncio.wait_for(
        asyncio.to_thread(control.request, server.path, "echo", {"x": 2}), timeout=5
    )
    assert reply == {"echo": {"x": 2}}
    writer.close()


def test_no_daemon_is_a_clear_error(tmp_path: Path) -> None:
    """Asking a data dir where no agent runs raises DaemonNotRunning naming the socket."""
    with pytest.raises(control.DaemonNotRunning) as info:
        control.request(tmp_path / "agentd.sock", "status")
    assert str(tmp_path / "agentd.sock") in info.value.message
    assert "squ-agentd serve" in info.value.message


async def test_stale_socket_is_replaced(tmp_path: Path) -> None:
    """A socket file left by a killed agent is removed and the new server binds."""
    import socket

    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "agentd.sock"))
    stale.close()  # file remains, nobody listens
    srv = control.ControlServer(tmp_path / "agentd.sock", {"echo": _echo})
    await srv.start()
    try:
        assert await asyncio.to_thread(control.request, srv.path, "echo") == {"echo": {}}
    finally:
        await srv.close()
    assert not (tmp_path / "agentd.sock").exists()
