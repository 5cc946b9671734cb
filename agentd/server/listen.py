"""The agent's WebSocket server: ``await serve(ops, config, host=, port=, ssl_context=)``.

Every websockets limit is set from ``ServerConfig``, never left at a library
default (DESIGN.md): frame size (= the protocol's ``max_frame_bytes``),
incoming queue, write buffer, ping interval and timeout, open and close
timeouts, compression off (docs/protocol.md says why), and a cap on
connections answered with HTTP 503 before any WebSocket is set up. Plain ws://
is refused unless the host is loopback.

Besides the sessions, the server runs small feeds shared by all connections,
one per topic: execution changes, job changes, approval requests, alerts
(each read from its change counter in the store, so every change is seen
whoever made it) and heartbeats. A feed sleeps while no session subscribed
to its topic and costs an idle agent nothing (issue 8); the first subscribe
wakes it from the then-latest seq (a console subscribes, then syncs with
``*.since``, so nothing falls between). While someone listens, ``notify()``
wakes every feed at once and ``feed_interval_s`` is only the fallback poll
for changes made without a ``notify()``. ``Server.close()`` stops them and
closes every connection with 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from agentd.server.handlers import AgentOps
from agentd.server.session import Session
from agentd.server.tls import require_safe_listen
from shared.errors import SquError
from shared.identity import Operator, parse_authorized_operators
from shared.protocol import ChallengeBook, CloseCode, Limits

__all__ = ["OperatorsFile", "Server", "ServerConfig", "serve"]

log = logging.getLogger("agentd.server")


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """Everything the server needs that is not the agent itself. All limits explicit."""

    authorized_operators: Path
    limits: Limits = field(default_factory=Limits)
    max_connections: int = 64
    # websockets transport settings
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    open_timeout_s: float = 10.0
    close_timeout_s: float = 5.0
    max_queue_frames: int = 16  # incoming frames buffered before TCP back-pressure
    write_limit_bytes: int = 64 * 1024  # transport write buffer high-water mark
    # our own output: frames waiting for a slow peer before it is closed (4030)
    max_queued_frames: int = 256
    send_timeout_s: float = 30.0
    # requests in progress when a link closes get this long to finish before cancel
    request_grace_s: float = 5.0
    # feeds: the fallback poll while someone subscribed (notify() wakes them at once)
    feed_interval_s: float = 0.5
    heartbeat_interval_s: float = 5.0
    log_poll_s: float = 0.5


class OperatorsFile:
    """authorized_operators, re-read when the file changes (no restart to add someone).

    A file that does not parse refuses every login with the reason (fail closed)
    until it is fixed; a missing file means nobody is authorised yet.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._operators: list[Operator] = []
        self._error: SquError | None = None

    def current(self) -> list[Operator]:
        """The operators now; raises the file's ``InvalidOperators`` while it is broken."""
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            if self._stamp != (0, 0):
                log.warning("%s does not exist: nobody can log in", self.path)
            self._stamp, self._operators, self._error = (0, 0), [], None
            return []
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                text = self.path.read_text(encoding="utf-8")
                self._operators = parse_authorized_operators(text, str(self.path))
                self._error = None
                log.info("%s: %d operator(s)", self.path, len(self._operators))
            except SquError as exc:
                log.error("%s (every login refused until it is fixed)", exc.message)
                self._error = exc
            except (OSError, UnicodeDecodeError) as exc:
                self._error = SquError(f"cannot read {self.path}: {exc}")
                log.error("%s", self._error.message)
        if self._error is not None:
            raise self._error
        return self._operators


class _Feed:
    """One topic's feed: its cursor in the store's change counter, and what wakes it.

    ``cursor`` is None while the feed sleeps (nobody subscribed): the next
    subscriber starts it from the latest seq then, not from where it stopped.
    """

    def __init__(
        self,
        topic: str,
        latest: Callable[[], Awaitable[int]],
        step: Callable[[int], Awaitable[int]],
    ) -> None:
        self.topic = topic
        self.latest = latest
        self.step = step
        self.wake = asyncio.Event()
        self.cursor: int | None = None

    async def prime(self) -> None:
        """Start the cursor at the latest seq unless it is running already."""
        if self.cursor is None:
            seq = await self.latest()
            if self.cursor is None:  # the loop may have primed it meanwhile
                self.cursor = seq


class Server:
    """A listening agent server; ``close()`` then ``wait_closed()`` to stop it."""

    def __init__(self, ops: AgentOps, config: ServerConfig) -> None:
        self.ops = ops
        self.config = config
        self.agent_name = ops.agent_name
        self.agent_version = ops.agent_version
        self.operators = OperatorsFile(config.authorized_operators)
        self.book = ChallengeBook()
        self.sessions: set[Session] = set()
        self.ws: Any = None
        self._heartbeat_wake = asyncio.Event()
        self._topic_feeds = {
            feed.topic: feed
            for feed in (
                _Feed("executions", ops.latest_seq, self._feed_executions),
                # Jobs and executions share one seq counter.
                _Feed("jobs", ops.latest_seq, self._feed_jobs),
                # Approval requests and alerts have change counters of their own.
                _Feed("approvals", ops.latest_approval_seq, self._feed_approvals),
                _Feed("alerts", ops.latest_alert_seq, self._feed_alerts),
            )
        }
        self._feeds: list[asyncio.Task[None]] = []

    @property
    def port(self) -> int:
        """The TCP port listened on (useful with port=0)."""
        sock = next(iter(self.ws.sockets))
        return int(sock.getsockname()[1])

    @property
    def connection_count(self) -> int:
        return len(self.ws.connections) if self.ws is not None else 0

    def notify(self) -> None:
        """Something changed (an execution, a job): push it now rather than at the next poll.

        A feed nobody subscribed to stays asleep: waking it costs nothing.
        """
        for feed in self._topic_feeds.values():
            feed.wake.set()

    async def topic_subscribed(self, topic: str) -> None:
        """A session just subscribed to ``topic``: start its feed before the reply goes out.

        Called by the ``subscribe`` handler, so a change committed after the reply
        is pushed, and one committed before it is in the console's next sync.
        """
        if topic == "heartbeat":
            self._heartbeat_wake.set()
        feed = self._topic_feeds.get(topic)
        if feed is None:
            return
        try:
            await feed.prime()
        except asyncio.CancelledError:
            raise
        except Exception:
            # The feed's own loop primes it again; the subscription itself stands.
            log.exception("feed %s could not start now; its loop retries", topic)
        feed.wake.set()

    def _listening(self, topic: str) -> bool:
        return any(session.wants(topic) for session in list(self.sessions))

    def close(self) -> None:
        """Stop listening and close every connection with 1001 (going away)."""
        for task in self._feeds:
            task.cancel()
        if self.ws is not None:
            self.ws.close(
                close_connections=True, code=CloseCode.GOING_AWAY, reason="agent stopping"
            )

    async def wait_closed(self) -> None:
        await asyncio.gather(*self._feeds, return_exceptions=True)
        if self.ws is not None:
            await self.ws.wait_closed()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    # -- websockets callbacks ------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        # The cap is checked before the WebSocket exists, so a flood of connections costs
        # an HTTP 503 each, not a session.
        if self.connection_count >= self.config.max_connections:
            log.warning(
                "refusing a connection from %s: %d connections already (max_connections)",
                connection.remote_address,
                self.connection_count,
            )
            return Response(
                503,
                "Service Unavailable",
                Headers([("Content-Type", "text/plain"), ("Retry-After", "5")]),
                f"too many connections (max {self.config.max_connections}); "
                "try again later\n".encode(),
            )
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        session = Session(ws, self)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)

    # -- feeds -----------------------------------------------------------------------------

    def _start_feeds(self) -> None:
        self._feeds = [
            asyncio.create_task(self._feed_loop(feed), name=f"feed-{topic}")
            for topic, feed in self._topic_feeds.items()
        ]
        self._feeds.append(asyncio.create_task(self._heartbeat_loop(), name="feed-heartbeat"))

    async def _feed_loop(self, feed: _Feed) -> None:
        # Upkeep loop (STYLE.md): one bad poll is logged and the next one tries again.
        while True:
            if not self._listening(feed.topic):
                # Issue 8: no store query, no timer while nobody listens; topic_subscribed()
                # (or a notify()) wakes the loop, which then looks again.
                feed.cursor = None
                feed.wake.clear()
                await feed.wake.wait()
                continue
            try:
                await feed.prime()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(feed.wake.wait(), self.config.feed_interval_s)
                feed.wake.clear()
                if feed.cursor is not None:
                    feed.cursor = await feed.step(feed.cursor)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("feed %s failed; retrying", feed.topic)
                await asyncio.sleep(self.config.feed_interval_s * 4)

    async def _feed_executions(self, cursor: int) -> int:
        while True:
            _, _, rows = await self.ops.history_since(cursor, self.config.limits.max_batch)
            if not rows:
                return cursor
            for row in rows:
                for session in list(self.sessions):
                    if session.wants("executions"):
                        session.deliver("executions", row)
            cursor = rows[-1].seq
            if len(rows) < self.config.limits.max_batch:
                return cursor

    async def _feed_jobs(self, cursor: int) -> int:
        for seq, change in await self.ops.job_changes_since(cursor):
            for session in list(self.sessions):
                if session.wants("jobs"):
                    session.deliver("jobs", change)
            cursor = max(cursor, seq)
        return cursor

    async def _feed_approvals(self, cursor: int) -> int:
        for info in await self.ops.approval_changes_since(cursor):
            for session in list(self.sessions):
                if session.wants("approvals"):
                    session.deliver("approvals", info)
            cursor = max(cursor, info.seq)
        return cursor

    async def _feed_alerts(self, cursor: int) -> int:
        # Alerts change in the store's writer (with the execution that raised them) and in
        # the delivery loop; their own seq says what changed (docs/alerts.md).
        for alert in await self.ops.alert_changes_since(cursor):
            for session in list(self.sessions):
                if session.wants("alerts"):
                    session.deliver("alerts", alert)
            cursor = max(cursor, alert.seq)
        return cursor

    async def _heartbeat_loop(self) -> None:
        while True:
            if not self._listening("heartbeat"):
                # No timer while nobody listens (issue 8): a subscribe wakes it.
                self._heartbeat_wake.clear()
                await self._heartbeat_wake.wait()
                continue
            await asyncio.sleep(self.config.heartbeat_interval_s)
            listeners = [s for s in list(self.sessions) if s.wants("heartbeat")]
            if not listeners:
                continue
            try:
                beat = await self.ops.heartbeat()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("heartbeat failed")
                continue
            for session in listeners:
                session.deliver("heartbeat", beat)


async def serve(
    agent_ops: AgentOps,
    config: ServerConfig,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
) -> Server:
    """Listen on ``host:port`` (wss:// with ``ssl_context``; ws:// only on loopback).

    Returns once listening; the server runs in the background until ``close()``.
    Raises ``InsecureListen`` for ws:// off loopback, ``OSError`` if the port is taken.
    """
    require_safe_listen(host, ssl_context)
    server = Server(agent_ops, config)
    limits = config.limits
    server.ws = await ws_serve(
        server._handle,
        host,
        port,
        ssl=ssl_context,
        compression=None,
        process_request=server._process_request,
        server_header=None,  # no version banner for scanners
        open_timeout=config.open_timeout_s,
        ping_interval=config.ping_interval_s,
        ping_timeout=config.ping_timeout_s,
        close_timeout=config.close_timeout_s,
        max_size=limits.max_frame_bytes,
        max_queue=config.max_queue_frames,
        write_limit=config.write_limit_bytes,
        logger=logging.getLogger("agentd.server.ws"),
    )
    server._start_feeds()
    log.info(
        "listening on %s://%s:%d (max %d connections)",
        "wss" if ssl_context is not None else "ws",
        host,
        server.port,
        config.max_connections,
    )
    return server
