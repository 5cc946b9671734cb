"""A tiny asyncio HTTP/1.1 responder for ``GET /metrics`` (no framework).

``MetricsServer(render, host, port)``: ``await start()`` binds (port 0 picks a
free one; ``.port`` tells which), each request gets one response and the
connection closes; ``await close()`` stops it (safe twice). Only ``GET`` or
``HEAD`` of ``/metrics`` (or ``/``) answer 200; other paths 404, other methods
405, anything unreadable 400. A request line and headers are capped at 8 KiB and
must arrive within 5 s, so a stuck or hostile client costs one small task.
It binds 127.0.0.1 by default: metrics reveal job names, so exposing them
further is an explicit choice (``--metrics-listen 0.0.0.0:7422``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from shared.errors import SquError

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_LISTEN",
    "BadMetricsAddress",
    "MetricsServer",
    "parse_listen",
    "start_agent_metrics",
]

log = logging.getLogger("agentd.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_HEAD_BYTES = 8192
READ_TIMEOUT_S = 5.0
DEFAULT_LISTEN = "127.0.0.1:7422"


class BadMetricsAddress(SquError):
    """``--metrics-listen`` is neither ``off`` nor ``HOST:PORT``."""

    code = "bad_argument"

    def __init__(self, text: str, why: str) -> None:
        super().__init__(f"--metrics-listen {text!r}: {why}", value=text)


def parse_listen(text: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[::1]:7422`` for IPv6) -> (host, port); ``off`` -> None."""
    text = text.strip()
    if text.lower() in ("off", "none", ""):
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise BadMetricsAddress(text, "use HOST:PORT such as 127.0.0.1:7422, or off")
    host = host.removeprefix("[").removesuffix("]")
    try:
        port = int(port_text)
    except ValueError:
        raise BadMetricsAddress(text, f"port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise BadMetricsAddress(text, f"port {port} is outside 0-65535")
    return host, port


class MetricsServer:
    """Serves ``render()``'s text on ``GET /metrics`` until closed."""

    def __init__(
        self, render: Callable[[], Awaitable[str]], host: str = "127.0.0.1", port: int = 7422
    ) -> None:
        self.render = render
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind and start answering; ``OSError`` if the address is taken."""
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=MAX_HEAD_BYTES
        )
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body, head_only = await self._respond(reader)
            data = body.encode()
            headers = (
                f"HTTP/1.1 {status}\r\n"
                f"Content-Type: {CONTENT_TYPE if status.startswith('200') else 'text/plain'}\r\n"
                f"Content-Length: {len(data)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(headers.encode() + (b"" if head_only else data))
            await asyncio.wait_for(writer.drain(), READ_TIMEOUT_S)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the scraper went away; nothing to answer
        except Exception:
            # A bug in rendering must not take the agent down: log it, answer nothing more.
            log.exception("metrics request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[str, str, bool]:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
        except asyncio.LimitOverrunError:
            return "431 Request Header Fields Too Large", "request head too large\n", False
        except asyncio.IncompleteReadError as exc:
            head = exc.partial
            if not head.strip():
                raise
        if len(head) > MAX_HEAD_BYTES:
            return "431 Request Header Fields Too Large", "request head too large\n", False
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return "400 Bad Request", "expected: GET /metrics HTTP/1.1\n", False
        method, target = parts[0], parts[1].split("?", 1)[0]
        if target not in ("/metrics", "/"):
            return "404 Not Found", "metrics are at /metrics\n", False
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "only GET and HEAD\n", False
        return "200 OK", await self.render(), method == "HEAD"


async def start_agent_metrics(
    agent: object, listen: tuple[str, int] | None
) -> MetricsServer | None:
    """Serve ``agent``'s metrics on ``listen``; None when off or when the port is taken.

    The daemon calls it once its store is open. A port that cannot be bound is
    logged as an error and the agent carries on without metrics: jobs matter
    more than graphs (``squ-agentd doctor`` reports it).
    """
    if listen is None:
        return None
    from agentd.metrics import AgentMetrics

    metrics = AgentMetrics(agent)
    await metrics.prime()
    agent.metrics = metrics  # type: ignore[attr-defined]  # alert senders count failures here
    server = MetricsServer(metrics.render, *listen)
    try:
        await server.start()
    except OSError as exc:
        log.error("metrics: cannot listen on %s:%d (%s); serving without", *listen, exc.strerror)
        return None
    log.info("metrics on %s", server.url, extra={"metrics_url": server.url})
    return server
