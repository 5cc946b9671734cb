"""The agent's side of the supervisor: an asyncio client over ``DATA/supervisor/sock``.

``SupervisorClient.connect_or_spawn(data_dir)`` finds the running supervisor or
starts one (detached, in its own session) and connects. Closing the client, or
the agent dying, never affects running jobs. Every exit is delivered through
``exits()`` on each connection until some client ``ack``s it, so an agent that
crashed before recording an exit gets it again after its restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec

from agentd.supervisor.records import ExitRecord, RunningInfo, RunSpec, Started
from agentd.supervisor.server import socket_path, supervisor_dir
from agentd.supervisor.wire import MessageReader, WireError, encode_message
from agentd.unixpath import reachable
from shared.errors import SquError

__all__ = ["DiskFull", "SupervisorClient", "SupervisorError", "SupervisorUnavailable"]


class SupervisorError(SquError):
    """The supervisor refused a request; ``code`` is its reason (``conflict``, ``stopping``...)."""

    code = "supervisor"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, reason=code)
        self.reason = code


class DiskFull(SupervisorError):
    code = "disk_full"


class SupervisorUnavailable(SquError):
    code = "supervisor_unavailable"

    def __init__(self, data_dir: Path, why: str) -> None:
        super().__init__(f"no supervisor for {data_dir}: {why}", why=why)


_SENTINEL = object()


class SupervisorClient:
    """One connection to the supervisor. Use ``connect_or_spawn``; ``close`` when done."""

    def __init__(
        self, data_dir: Path, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.data_dir = data_dir
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._exits: asyncio.Queue[Any] = asyncio.Queue()
        self._closed = False
        self._lost_reason = ""
        self.containment = "sweep"
        self.containment_detail = ""
        self.supervisor_pid = 0
        self.boot_id = ""
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    # -- connecting ------------------------------------------------------------------

    @classmethod
    async def connect(cls, data_dir: Path) -> SupervisorClient:
        """Connect to a running supervisor; ``SupervisorUnavailable`` if none answers."""
        data_dir = _absolute(data_dir)
        path = socket_path(data_dir)
        try:
            reader, writer = await _open_unix(path)
        except OSError as exc:
            raise SupervisorUnavailable(data_dir, exc.strerror or str(exc)) from None
        client = cls(data_dir, reader, writer)
        try:
            hello = await client._request("hello")
        except BaseException:
            await client.close()
            raise
        client.containment = hello["containment"]
        client.containment_detail = hello.get("containment_detail", "")
        client.supervisor_pid = hello["pid"]
        client.boot_id = hello["boot_id"]
        return client

    @classmethod
    async def connect_or_spawn(
        cls, data_dir: Path, *, timeout_s: float = 15.0, containment: str = "auto"
    ) -> SupervisorClient:
        """Connect to the supervisor of ``data_dir``, starting it first if none answers."""
        data_dir = _absolute(data_dir)
        try:
            return await cls.connect(data_dir)
        except SupervisorUnavailable:
            pass
        deadline = time.monotonic() + timeout_s
        spawned_at = -1.0
        while True:
            if time.monotonic() - spawned_at > 5.0:
                # Again every 5 s: a supervisor that was just exiting (idle) held the lock
                # when we spawned the last one, which then stepped aside.
                await asyncio.to_thread(spawn_supervisor, data_dir, containment=containment)
                spawned_at = time.monotonic()
            try:
                return await cls.connect(data_dir)
            except SupervisorUnavailable:
                if time.monotonic() > deadline:
                    raise SupervisorUnavailable(
                        data_dir,
                        f"started one but it did not answer within {timeout_s:.0f} s "
                        f"(see {supervisor_dir(data_dir) / 'supervisor.log'})",
                    ) from None
                await asyncio.sleep(0.05)

    # -- requests --------------------------------------------------------------------

    async def start(self, spec: RunSpec) -> Started | ExitRecord:
        """Spawn the job; returns once its start is journalled (DATA/supervisor/journal).

        A spawn that fails (bad cwd, no such command, bad user) is not an
        exception: it returns the ``spawn_failed`` ``ExitRecord``, which is also
        delivered through ``exits()`` like any exit (ack it once). A repeated
        start of the same ``exec_id`` never runs it twice: it returns the running
        job's ``Started`` or its recorded ``ExitRecord``. Raises ``DiskFull`` when
        the run dir's file system is below ``spec.min_free_bytes``.
        """
        result = await self._request("start", **msgspec.to_builtins(spec, enc_hook=str))
        if "outcome" in result:
            record = msgspec.convert(result, ExitRecord)
            self._exits.put_nowait(record)
            return record
        return msgspec.convert(result, Started)

    async def cancel(self, exec_id: str) -> str:
        """Stop a running job (SIGTERM to all of it, grace, SIGKILL); its exit says ``cancelled``.

        Returns "cancelling", "finished" (exit already recorded) or "unknown".
        """
        return str(await self._request("cancel", exec_id=exec_id))

    async def list_running(self) -> list[RunningInfo]:
        return msgspec.convert(await self._request("list"), list[RunningInfo])

    async def ack(self, exec_id: str) -> None:
        """The agent has recorded this exit: the supervisor stops re-sending it.

        A notification (no reply awaited): if it is lost with the connection, the
        exit is replayed on the next one and acked again, which is harmless.
        """
        if self._task.done():
            raise SupervisorUnavailable(self.data_dir, self._lost_reason or "connection closed")
        try:
            self._writer.write(encode_message({"op": "ack", "params": {"exec_id": exec_id}}))
            await self._writer.drain()
        except OSError as exc:
            raise SupervisorUnavailable(self.data_dir, str(exc)) from None

    async def exits(self) -> AsyncIterator[ExitRecord]:
        """Exit records as they happen (and every unacked one on connect).

        Ends with ``SupervisorUnavailable`` if the connection is lost.
        """
        while True:
            item = await self._exits.get()
            if item is _SENTINEL:
                self._exits.put_nowait(_SENTINEL)  # for any other iterator
                raise SupervisorUnavailable(self.data_dir, self._lost_reason or "connection closed")
            yield item

    async def close(self) -> None:
        """Close this connection only; jobs keep running. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task

    @property
    def is_connected(self) -> bool:
        return not self._closed and not self._task.done()

    async def _request(self, op: str, **params: Any) -> Any:
        if self._task.done():
            raise SupervisorUnavailable(self.data_dir, self._lost_reason or "connection closed")
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            self._writer.write(encode_message({"id": req_id, "op": op, "params": params}))
            await self._writer.drain()
        except OSError as exc:
            self._pending.pop(req_id, None)
            raise SupervisorUnavailable(self.data_dir, str(exc)) from None
        return await fut

    async def _read_loop(self) -> None:
        decoder = MessageReader()
        reason = "the supervisor closed the connection"
        try:
            while data := await self._reader.read(1 << 16):
                for message in decoder.feed(data):
                    self._receive(message)
        except (OSError, WireError) as exc:
            reason = str(exc)
        finally:
            self._lost_reason = reason
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(SupervisorUnavailable(self.data_dir, reason))
            self._pending.clear()
            self._exits.put_nowait(_SENTINEL)

    def _receive(self, message: dict[str, Any]) -> None:
        if message.get("event") == "exit":
            self._exits.put_nowait(msgspec.convert(message["record"], ExitRecord))
            return
        fut = self._pending.pop(message.get("id", -1), None)
        if fut is None or fut.done():
            return
        if message.get("ok"):
            fut.set_result(message.get("result"))
        else:
            err = message.get("error") or {}
            code, text = str(err.get("code", "error")), str(err.get("message", "failed"))
            exc_type = DiskFull if code == "disk_full" else SupervisorError
            fut.set_exception(exc_type(code, text))


def _absolute(path: Path | str) -> Path:
    # Not resolve(): no file-system access, so nothing blocks the loop.
    p = Path(path)
    return p if p.is_absolute() else Path.cwd() / p


async def _open_unix(path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    with reachable(path) as name:
        return await asyncio.open_unix_connection(name, limit=1 << 20)


def spawn_supervisor(
    data_dir: Path, *, containment: str = "auto", idle_exit_s: float | None = None
) -> None:
    """Start a detached supervisor for ``data_dir`` (it exits at once if one already runs)."""
    sdir = supervisor_dir(data_dir)
    sdir.mkdir(parents=True, exist_ok=True)
    root = str(Path(__file__).resolve().parents[2])
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": root,
    }
    with (sdir / "supervisor.log").open("ab") as logf:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agentd.supervisor",
                "--data-dir",
                str(data_dir),
                "--detach",
                "--containment",
                containment,
                *(["--idle-exit-s", str(idle_exit_s)] if idle_exit_s is not None else []),
            ],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            cwd="/",
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    proc.wait()  # the first fork returns at once; the supervisor lives on in its own session
