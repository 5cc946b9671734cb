"""A real agent WebSocket server with a pre-filled store, for wire benchmarks.

Built from the protocol owner's pieces rather than copies of them: the server
script ``bench.protocol_core.SERVE`` (``agentd.server.serve`` over
``StoreOps`` on a real store holding N executions, plain ws on loopback) and
the small real client ``tests.agentd.wsclient.Client`` (websockets + the
sans-I/O ``shared.protocol.Connection``, SSHSIG login). The console's own
link replaces the client once it lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.core import BenchError, NotBuilt

__all__ = ["AgentServer", "agent_server", "client_class", "console_link", "new_key"]

REPO = Path(__file__).resolve().parent.parent


def _need(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise NotBuilt(f"{module} ({exc.name})") from None


@contextlib.asynccontextmanager
async def console_link(url: str, key: Any, *, name: str = "db1") -> AsyncIterator[Any]:
    """The console's real ``Link`` to one agent, up; stopped on exit.

    No mirror and no subscriptions: the benchmark decides what the link does.
    """
    link_mod = _need("console.fleet.link")
    config = _need("console.config")
    link = link_mod.Link(config.AgentEntry(name=name, url=url), key=key, subscribe=False)
    task = asyncio.create_task(link.run())
    try:
        await link.wait_up(30)
        yield link
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def client_class() -> Any:
    """The real protocol client (``tests.agentd.wsclient.Client``)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return _need("tests.agentd.wsclient").Client


@dataclass(frozen=True, slots=True)
class AgentServer:
    url: str
    key: Any  # the operator's Ed25519 private key (admin in authorized_operators)
    process: psutil.Process


def new_key() -> Any:
    """A fresh operator key (Ed25519), as ``squ keygen`` makes."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate()


@contextlib.contextmanager
def agent_server(work: Path, rows: int, *, key: Any = None) -> Iterator[AgentServer]:
    """Start the server child with ``rows`` executions stored; stop it on exit.

    ``key`` is the operator allowed in (admin); a fresh one when not given.
    """
    core = _need("bench.protocol_core")
    from shared.identity import public_key_line

    key = key or new_key()
    (work / "ops").write_text(f"admin bench {public_key_line(key)}\n")
    child = subprocess.Popen(
        [sys.executable, "-c", core.SERVE, str(work), str(rows)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.strip().isdigit():
            raise BenchError(f"agent server did not start (exit {child.poll()})")
        yield AgentServer(f"ws://127.0.0.1:{int(line)}", key, psutil.Process(child.pid))
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
