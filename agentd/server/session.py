"""One WebSocket connection on the agent: drives a protocol ``Connection`` with real I/O.

``Session.run()`` is the whole life of a connection: send the challenge,
check the login, then read frames, run each request's handler in its own task
(the Connection bounds how many), and write replies and pushed events through
one bounded outgoing queue. A peer that stops reading fills that queue and is
closed with 4030 and a reason, so memory stays bounded; a handler's bug becomes
``internal`` for that request only. Nothing a peer sends can stop the agent
serving everyone else: every failure ends this session alone, and is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from agentd.server.handlers import HANDLERS, CallContext
from shared.errors import SquError
from shared.identity import fingerprint, load_public_key
from shared.protocol import (
    ClientHello,
    CloseCode,
    Closed,
    Connection,
    ErrorCode,
    Event,
    HelloReceived,
    LogChunk,
    OversizedMessage,
    ProtocolViolation,
    RequestReceived,
    State,
    check_proof,
    new_server_hello,
)

if TYPE_CHECKING:
    from agentd.server.listen import Server

__all__ = ["Session"]

log = logging.getLogger("agentd.server")

_CLOSE = object()  # sentinel in the outgoing queue: close after what came before
_STOP = object()  # sentinel: the session is over, stop writing


class Session:
    """One authenticated (or authenticating) client."""

    def __init__(self, ws: ServerConnection, server: Server) -> None:
        self.ws = ws
        self.server = server
        self.config = server.config
        self.conn = Connection("server", limits=self.config.limits)
        self.peer = _peer(ws)
        self.ctx: CallContext | None = None
        self._out: asyncio.Queue[Any] = asyncio.Queue(maxsize=self.config.max_queued_frames)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._logs_wanted = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------

    async def run(self) -> None:
        """Serve this connection until it closes; never raises."""
        writer = asyncio.create_task(self._write_loop(), name=f"ws-writer {self.peer}")
        ticker = asyncio.create_task(self._tick_loop(), name=f"ws-ticker {self.peer}")
        logs = asyncio.create_task(self._follow_logs(), name=f"ws-logs {self.peer}")
        try:
            now = time.time()
            # Keeps the book bounded: expired challenges can only fail as expired anyway.
            self.server.book.forget_expired(now)
            hello = new_server_hello(
                agent=self.server.agent_name,
                agent_version=self.server.agent_version,
                now=now,
                nonce=secrets.token_bytes(32),
                ttl_s=self.config.limits.challenge_ttl_s,
            )
            self.server.book.issue(hello)
            self.conn.send_hello(hello)
            self._flush()
            async for text in self.ws:
                self.conn.receive_text(text, time.time())
                self._process()
                if self._closing:
                    break
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("session %s failed", self.peer)
            self._close_now(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            code = self.ws.close_code if self.ws.close_code is not None else 1006
            self.conn.receive_closed(code, self.ws.close_reason or "")
            ticker.cancel()
            logs.cancel()
            if self._tasks:
                # Requests already being served finish (a run half-started because its
                # caller hung up is worse than a reply nobody reads), within a grace period.
                _, late = await asyncio.wait(set(self._tasks), timeout=self.config.request_grace_s)
                for task in late:
                    log.warning(
                        "%s from %s cancelled after the link closed", task.get_name(), self._who()
                    )
                    task.cancel()
            # Let the writer send what is queued (a refusal's reason) before closing.
            with contextlib.suppress(asyncio.QueueFull):
                self._out.put_nowait(_STOP)
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(writer, self.config.close_timeout_s)
            writer.cancel()
            await asyncio.gather(*self._tasks, ticker, logs, writer, return_exceptions=True)

    # -- protocol events --------------------------------------------------------------

    def _process(self) -> None:
        for event in self.conn.events_received():
            self._handle(event)
        self._flush()

    def _handle(self, event: Event) -> None:
        if isinstance(event, HelloReceived):
            self._login(event.hello)  # type: ignore[arg-type]
        elif isinstance(event, RequestReceived):
            task = asyncio.create_task(self._serve_request(event), name=f"{event.method}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(event, ProtocolViolation):
            log.warning("%s (%s): %s: %s", self.peer, self._who(), event.code, event.message)
        elif isinstance(event, Closed):
            pass

    def _login(self, hello: ClientHello) -> None:
        sent = self.conn.hello_sent
        assert sent is not None
        try:
            operators = self.server.operators.current()
            op = check_proof(hello, sent, operators, now=time.time(), book=self.server.book)  # type: ignore[arg-type]
        except SquError as exc:
            log.warning("refused login from %s (%s): %s", self.peer, hello.client, exc.message)
            self._audit_refused_login(hello, exc)
            self.conn.refuse(exc)
            return
        log.info("%s logged in from %s as %s (%s)", op.name, self.peer, op.role, hello.client)
        self.ctx = CallContext(
            operator=op.name,
            role=op.role,
            limits=self.config.limits,
            peer=self.peer,
            logs_subscribed=self._logs_wanted.set,
            topic_subscribed=self.server.topic_subscribed,
        )
        self.server.sessions.add(self)
        self.conn.accept(op.name, op.role)

    def _audit_refused_login(self, hello: ClientHello, exc: SquError) -> None:
        """docs/audit.md: operator auth failures are audited (at most a few a second)."""
        record = getattr(self.server.ops, "record_audit", None)
        if record is None or not _AUDIT_LOGINS.take(time.monotonic()):
            return
        try:
            who = fingerprint(load_public_key(hello.public_key))
        except SquError:
            who = "unreadable key"
        task = asyncio.ensure_future(
            record(
                "auth.refused",
                by=who,
                target=self.peer,
                origin=f"wire {self.peer}",
                detail={"code": exc.code, "why": exc.message, "client": hello.client},
            )
        )
        # Held until done (an unreferenced task may be collected mid-write).
        _AUDIT_TASKS.add(task)
        task.add_done_callback(_AUDIT_TASKS.discard)

    async def _serve_request(self, request: RequestReceived) -> None:
        assert self.ctx is not None
        handler = HANDLERS[request.method]
        try:
            result = await handler(self.server.ops, request.params, self.ctx)
        except asyncio.CancelledError:
            raise
        except SquError as exc:
            self._reply_error(request, exc)
        except Exception:
            log.exception("%s from %s failed", request.method, self._who())
            self._reply(
                lambda: self.conn.send_error(
                    request.id,
                    ErrorCode.INTERNAL,
                    f"internal error in {request.method}; see the agent's log",
                )
            )
        else:
            if self.conn.state is not State.OPEN:
                return  # the peer left while the handler ran; the work itself is done
            try:
                self.conn.send_result(request.id, result)
            except OversizedMessage as exc:
                self._reply_error(request, exc)
            self._flush()

    def _reply_error(self, request: RequestReceived, exc: SquError) -> None:
        log.info("%s from %s refused: %s", request.method, self._who(), exc.message)
        self._reply(lambda: self.conn.send_exception(request.id, exc))

    def _reply(self, send: Any) -> None:
        if self.conn.state is State.OPEN:
            send()
        self._flush()

    # -- pushes ---------------------------------------------------------------------------

    def wants(self, topic: str, key: str = "") -> bool:
        """Whether this session subscribed to ``topic`` (for ``logs``: that execution)."""
        return (
            self.ctx is not None
            and self.conn.state is State.OPEN
            and key in self.ctx.topics.get(topic, ())
        )

    def deliver(self, topic: str, payload: Any) -> None:
        """Push one event to this client; a client too slow to take it is closed."""
        if self.conn.state is not State.OPEN:
            return
        try:
            self.conn.push(topic, payload)
        except OversizedMessage as exc:
            log.warning("%s event for %s dropped: %s", topic, self._who(), exc.message)
            return
        self._flush()

    async def _follow_logs(self) -> None:
        """Push new log bytes of each execution this client follows, until it completes."""
        while True:
            if self.ctx is None or not self.ctx.topics.get("logs"):
                # Idle sessions cost no wake-ups: sleep until a logs subscription arrives.
                self._logs_wanted.clear()
                await self._logs_wanted.wait()
                continue
            await asyncio.sleep(self.config.log_poll_s)
            for exec_id in list(self.ctx.topics.get("logs", ())):
                await self._push_log(exec_id)

    async def _push_log(self, exec_id: str) -> None:
        assert self.ctx is not None
        offset, skip = self.ctx.log_offsets.get(exec_id, (0, 0))
        try:
            piece = await self.server.ops.read_log(
                exec_id, None, offset, self.config.limits.max_log_chunk_bytes, skip
            )
        except SquError as exc:
            log.info("log follow of %s for %s stopped: %s", exec_id, self._who(), exc.message)
            self._stop_following(exec_id)
            return
        if piece.pieces and exec_id in self.ctx.log_offsets:
            self.deliver(
                "logs",
                LogChunk(
                    execution_id=exec_id,
                    offset=piece.offset,
                    next_offset=piece.next_offset,
                    pieces=piece.pieces,
                    next_skip=piece.next_skip,
                ),
            )
        if exec_id in self.ctx.log_offsets:
            self.ctx.log_offsets[exec_id] = (piece.next_offset, piece.next_skip)
        if piece.complete and piece.eof:
            self._stop_following(exec_id)

    def _stop_following(self, exec_id: str) -> None:
        assert self.ctx is not None
        self.ctx.topics.get("logs", set()).discard(exec_id)
        self.ctx.log_offsets.pop(exec_id, None)

    # -- output ---------------------------------------------------------------------------

    def _flush(self) -> None:
        """Move the Connection's frames to the writer; close when it asks."""
        for frame in self.conn.data_to_send():
            try:
                self._out.put_nowait(frame)
            except asyncio.QueueFull:
                self._close_now(
                    CloseCode.SLOW_READER,
                    f"peer stopped reading: {self._out.maxsize} frames waiting",
                )
                return
        close = self.conn.close_requested()
        if close is not None and not self._closing:
            self._closing = True
            try:
                self._out.put_nowait((_CLOSE, close))
            except asyncio.QueueFull:
                self._close_now(*close)

    def _close_now(self, code: int, reason: str) -> None:
        """Close without waiting for queued frames (the peer is not taking them)."""
        if self.conn.state is not State.CLOSED:
            log.warning("closing %s (%s): %s", self.peer, self._who(), reason)
            self.conn.close(code, reason)
        self._closing = True
        while not self._out.empty():
            self._out.get_nowait()
        self._out.put_nowait((_CLOSE, (code, reason)))

    async def _write_loop(self) -> None:
        while True:
            item = await self._out.get()
            if item is _STOP:
                return
            if isinstance(item, tuple) and item[0] is _CLOSE:
                code, reason = item[1]
                with contextlib.suppress(Exception):
                    await self.ws.close(code, reason)
                return
            try:
                # A peer that does not read lets the send buffer fill: give up after a while.
                # (asyncio.timeout, not wait_for: no extra task per frame.)
                async with asyncio.timeout(self.config.send_timeout_s):
                    await self.ws.send(item)
            except TimeoutError:
                log.warning("closing %s (%s): not reading", self.peer, self._who())
                self.ws.transport.abort()
                return
            except ConnectionClosed:
                return

    async def _tick_loop(self) -> None:
        # The server's only timer is the hello timeout: stop ticking once logged in.
        while self.conn.state not in (State.OPEN, State.CLOSED):
            await asyncio.sleep(min(1.0, self.config.limits.hello_timeout_s / 4))
            self.conn.tick(time.time())
            self._process()
            if self._closing:
                return

    def _who(self) -> str:
        return self.ctx.operator if self.ctx is not None else "not logged in"


def _peer(ws: ServerConnection) -> str:
    address = ws.remote_address
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


class _Budget:
    """A token bucket: a flood of bad logins must not fill the disk with audit entries."""

    def __init__(self, per_s: float, burst: int) -> None:
        self.per_s, self.burst = per_s, burst
        self.tokens, self.at = float(burst), 0.0

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_s)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


_AUDIT_LOGINS = _Budget(per_s=1.0, burst=20)
_AUDIT_TASKS: set[asyncio.Task[None]] = set()
