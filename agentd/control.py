"""The local control API: a Unix socket at ``DATA/agentd.sock`` used by the CLI.

Newline-delimited JSON, one request and one response per line::

    {"id": 1, "method": "run", "params": {"job": "backup", "wait": true}}
    {"id": 1, "ok": true, "result": {...}}
    {"id": 1, "ok": false, "error": {"code": "unknown_job", "message": "..."}}

The socket is created with mode 0600 (only root, or the agent's user, may
steer the agent); it is the local stand-in for the WebSocket protocol, which
will sit beside it. A connection may carry several requests; each is handled in
its own task so that ``run --wait`` on one connection never blocks others.
Bad input (not JSON, unknown method, wrong params) gets an error reply and
never reaches the agent's loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from agentd.unixpath import reachable
from shared.errors import SquError

__all__ = [
    "SOCKET_NAME",
    "BadRequest",
    "ControlServer",
    "DaemonNotRunning",
    "RemoteError",
    "request",
    "socket_path",
]

log = logging.getLogger("agentd.control")

SOCKET_NAME = "agentd.sock"
# A request line larger than this is refused: the CLI never sends more than a few KiB.
MAX_LINE_BYTES = 1 << 20

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class BadRequest(SquError):
    """A control request that is not what the API accepts; names what was wrong."""

    code = "bad_request"

    def __init__(self, why: str) -> None:
        super().__init__(why)


class DaemonNotRunning(SquError):
    """No agent answers on the control socket."""

    code = "daemon_not_running"

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            f"no agent is answering on {path} ({why}); start it with 'squ-agentd serve'",
            path=str(path),
        )


class RemoteError(SquError):
    """An error reply from the agent, re-raised on the CLI side with the agent's code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, remote_code=code)
        self.code = code  # type: ignore[misc]  # instance code mirrors the remote one


def socket_path(data_dir: Path) -> Path:
    """Where the agent for ``data_dir`` listens."""
    return Path(data_dir) / SOCKET_NAME


class ControlServer:
    """Serves ``handlers`` (method name -> async function of params) on a Unix socket.

    Call ``await start()`` once; ``await close()`` when the agent stops (safe twice).
    """

    def __init__(self, path: Path, handlers: Mapping[str, Handler]) -> None:
        self.path = Path(path)
        self.handlers = dict(handlers)
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Bind the socket (removing a stale one left by a killed agent) and accept clients."""
        self._remove_stale_socket()
        # Create with a restrictive umask so there is no window where the socket is 0666.
        old = os.umask(0o177)
        try:
            with reachable(self.path) as name:
                self._server = await asyncio.start_unix_server(
                    self._serve_client, path=name, limit=MAX_LINE_BYTES
                )
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        log.info("control socket listening on %s", self.path)

    def _remove_stale_socket(self) -> None:
        if not self.path.exists():
            return
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with reachable(self.path) as name:
                probe.connect(name)
        except OSError:
            self.path.unlink()  # nobody listens: left behind by a killed agent
            return
        finally:
            probe.close()
        raise SquError(f"another agent is already listening on {self.path}")

    async def close(self) -> None:
        """Stop accepting, cancel requests in flight, remove the socket file."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        write_lock = asyncio.Lock()
        pending: set[asyncio.Task[None]] = set()
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    await self._send(
                        writer, write_lock, _error(None, BadRequest("request too long"))
                    )
                    break
                except ConnectionError:
                    break
                if not line:
                    break
                job = asyncio.create_task(self._answer(line, writer, write_lock))
                pending.add(job)
                job.add_done_callback(pending.discard)
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        except asyncio.CancelledError:
            for job in pending:
                job.cancel()
            raise
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(
        self, line: bytes, writer: asyncio.StreamWriter, write_lock: asyncio.Lock
    ) -> None:
        req_id: Any = None
        try:
            try:
                req = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise BadRequest(f"request is not JSON: {exc}") from None
            if not isinstance(req, dict):
                raise BadRequest("request must be a JSON object")
            req_id = req.get("id")
            method = req.get("method")
            params = req.get("params") or {}
            if not isinstance(method, str) or method not in self.handlers:
                known = ", ".join(sorted(self.handlers))
                raise BadRequest(f"unknown method {method!r} (known: {known})")
            if not isinstance(params, dict):
                raise BadRequest(f"{method}: params must be a JSON object")
            result = await self.handlers[method](params)
            reply: dict[str, Any] = {"id": req_id, "ok": True, "result": result}
        except SquError as exc:
            reply = _error(req_id, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("control request failed: %r", line[:200])
            reply = {
                "id": req_id,
                "ok": False,
                "error": {"code": "internal", "message": "internal error (see the agent's log)"},
            }
        await self._send(writer, write_lock, reply)

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter, lock: asyncio.Lock, reply: dict[str, Any]
    ) -> None:
        async with lock:
            try:
                writer.write(json.dumps(reply, default=str).encode() + b"\n")
                await writer.drain()
            except ConnectionError:
                pass  # the client went away; the work it asked for is done regardless


def _error(req_id: Any, exc: SquError) -> dict[str, Any]:
    return {"id": req_id, "ok": False, "error": exc.to_dict()}


def request(
    path: Path,
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    timeout_s: float | None = 10.0,
) -> Any:
    """Send one request to the agent at ``path`` and return its result (blocking; for the CLI).

    Raises ``DaemonNotRunning`` when nobody listens and ``RemoteError`` on an error reply.
    ``timeout_s=None`` waits for ever (``run --wait``).
    """
    path = Path(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(5.0)
        try:
            with reachable(path) as name:
                sock.connect(name)
        except FileNotFoundError:
            raise DaemonNotRunning(path, "no socket") from None
        except OSError as exc:
            raise DaemonNotRunning(path, exc.strerror or str(exc)) from None
        sock.settimeout(timeout_s)
        body = {"id": 1, "method": method, "params": dict(params or {})}
        sock.sendall(json.dumps(body).encode() + b"\n")
        buf = bytearray()
        while not buf.endswith(b"\n"):
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise SquError(
                    f"the agent did not answer {method!r} within {timeout_s} s"
                ) from None
            if not chunk:
                raise DaemonNotRunning(path, "connection closed before a reply")
            buf += chunk
    finally:
        sock.close()
    reply = json.loads(buf)
    if reply.get("ok"):
        return reply.get("result")
    err = reply.get("error") or {}
    raise RemoteError(str(err.get("code", "error")), str(err.get("message", "unknown error")))
