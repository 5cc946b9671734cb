"""One reconnecting link from the console to one agent.

``Link(entry, key=...)`` owns one WebSocket at a time and drives the sans-I/O
``Connection`` over it (docs/protocol.md "Driving a Connection"). ``run()``
connects, checks the certificate pin (wss://), logs in with the operator's key,
then keeps the agent's history and jobs in the mirror (when it has one) until
the socket drops; it reconnects with exponential backoff and jitter, forever,
until cancelled. ``state`` is what the TUI shows: connecting, up, auth failed,
pin mismatch, or down since T with the reason in words.

* A pin mismatch stops the link for good (like SSH's known_hosts): the
  operator must look at it; a first connection pins the fingerprint through
  ``on_pin``.
* A refused login retries at the slowest pace: the agent's admin may add the
  key to ``authorized_operators`` at any time (it is re-read on each login).
* History sync follows ``shared.protocol.plan_sync``: rows and the cursor are
  stored in one mirror transaction, a new epoch restarts from zero, a retention
  gap is recorded. A pushed ``executions`` event only wakes the sync: the pull
  by cursor is the one path that writes rows, so nothing is stored twice or
  skipped whatever order frames arrive in.

The same code serves the TUI (``Fleet.run`` inside a Textual worker) and the
CLI (plain asyncio, ``Fleet`` as an async context manager).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from console.config import AgentEntry
from console.fleet.mirror import Mirror
from console.fleet.source import (
    AgentState,
    AgentStateChanged,
    AgentUnavailable,
    AlertRaised,
    ExecutionsChanged,
    HostMetrics,
    JobsChanged,
    LinkState,
    Post,
)
from shared.alerts import Alert
from shared.errors import SquError
from shared.identity import PrivateKey
from shared.models import Execution
from shared.protocol import (
    Closed,
    Connection,
    ErrorReceived,
    Event,
    EventPushed,
    Heartbeat,
    HelloReceived,
    HistorySince,
    JobChanged,
    Limits,
    ProtocolViolation,
    ResultReceived,
    ServerHello,
    Subscribe,
    Welcomed,
    make_client_hello,
    plan_sync,
)
from shared.protocol.messages import Empty

__all__ = [
    "AgentError",
    "Backoff",
    "Link",
    "LoginRefused",
    "PinMismatch",
    "der_fingerprint",
]

log = logging.getLogger("console.link")

# Login refusals (docs/protocol.md error codes): the key or proof, not the network.
_AUTH_CODES = frozenset(
    {"unknown_key", "bad_signature", "expired_proof", "replayed_proof", "unauthenticated"}
)
_AUTH_CLOSE = 4001
# How stale ``state.last_seen`` may be (s): the Servers view shows it to the second.
LAST_SEEN_RESOLUTION_S = 1.0


class PinMismatch(SquError):
    """The agent presented another certificate than the one pinned: refused, loudly."""

    code = "pin_mismatch"

    def __init__(self, agent: str, pinned: str, presented: str) -> None:
        super().__init__(
            f"agent {agent} presented certificate {presented}, but fleet.toml pins {pinned}: "
            "REFUSING TO CONNECT (someone may be impersonating it). If its certificate was "
            "renewed on purpose, confirm the new fingerprint with its admin "
            f"(squ-agentd init prints it), then: squ agents add {agent} URL "
            f"--fingerprint {presented}",
            agent=agent,
            pinned=pinned,
            presented=presented,
        )


class LoginRefused(SquError):
    """The agent refused the operator's key or proof."""

    code = "auth_failed"

    def __init__(self, agent: str, why: str) -> None:
        super().__init__(f"agent {agent} refused the login: {why}", agent=agent, why=why)


class AgentError(SquError):
    """An error reply from an agent, with the agent's own code and message."""

    code = "error"

    def __init__(self, agent: str, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(
            f"{agent}: {message}", agent=agent, remote_code=code, remote_details=details
        )
        self.remote_code = code
        self.agent = agent


def der_fingerprint(der: bytes) -> str:
    """``SHA256:<base64>`` of a DER certificate, as ``squ-agentd init`` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Reconnect delays: exponential from ``initial_s`` to ``max_s``, with jitter."""

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        """Delay before reconnect number ``attempt`` (0-based): half fixed, half random,
        so a fleet that lost its console at once does not come back in lockstep."""
        base = min(self.max_s, self.initial_s * self.factor ** min(attempt, 30))
        return base / 2 + rng.random() * base / 2


def _client_tls() -> ssl.SSLContext:
    # Trust comes from the pinned fingerprint, not a CA: agents make their own
    # certificate (DESIGN.md "Identity and security"), so chain and name checks are off
    # and the pin is checked before a single protocol frame is read or sent.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class Link:
    """The console's link to one agent; see the module docstring."""

    def __init__(
        self,
        entry: AgentEntry,
        *,
        key: PrivateKey,
        mirror: Mirror | None = None,
        post: Post | None = None,
        on_pin: Callable[[str, str], None] | None = None,
        client: str = "squ",
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        open_timeout_s: float = 10.0,
        request_timeout_s: float = 30.0,
        subscribe: bool = True,
    ) -> None:
        self.entry = entry
        self.name = entry.name
        self.key = key
        self.mirror = mirror
        self.post = post
        self.on_pin = on_pin
        self.client = client
        self.backoff = backoff or Backoff()
        self.rng = rng or random.SystemRandom()
        self.open_timeout_s = open_timeout_s
        self.request_timeout_s = request_timeout_s
        self.subscribe = subscribe
        self.state = AgentState(name=entry.name, url=entry.url, since=time.time())
        self.epoch = ""
        self.operator = ""
        self.role = ""
        self.attempts = 0  # finished connection attempts (for the CLI: "tried once")
        self._conn: Connection | None = None
        self._ws: ClientConnection | None = None
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._welcome: asyncio.Future[None] | None = None
        self._login_error: ErrorReceived | None = None
        self._changed = asyncio.Event()
        self._sync_wanted = asyncio.Event()
        self._jobs_wanted = asyncio.Event()

    # -- state -------------------------------------------------------------------------

    def _set_state(self, link: LinkState, error: str = "", **changes: Any) -> None:
        now = time.time()
        since = self.state.since if link is self.state.link else now
        self.state = replace(self.state, link=link, since=since, error=error, **changes)
        self._emit(AgentStateChanged(self.name))
        self._changed.set()

    async def _wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while True:
                self._changed.clear()  # no await between clear and test: no lost wake-up
                if predicate():
                    return
                await self._changed.wait()

    def _emit(self, message: Any) -> None:
        if self.post is not None:
            try:
                self.post(message)
            except Exception:  # a closing app may refuse messages; the link carries on
                log.debug("post of %s failed", type(message).__name__, exc_info=True)

    @property
    def is_up(self) -> bool:
        return self.state.link is LinkState.UP

    async def wait_settled(self, timeout_s: float) -> AgentState:
        """Wait until the link is up, or its first attempt failed; returns the state.

        For the CLI: a command acts on the agents that are up and names the others
        (with the reason) instead of waiting through reconnect backoffs.
        """
        await self._wait_for(
            lambda: (
                self.is_up
                or self.attempts > 0
                or self.state.link in (LinkState.PIN_MISMATCH, LinkState.AUTH_FAILED)
            ),
            timeout_s,
        )
        return self.state

    async def wait_up(self, timeout_s: float) -> None:
        """Wait until the link is up (after a reconnect, say); raises AgentUnavailable."""
        try:
            await self._wait_for(
                lambda: self.is_up or self.state.link is LinkState.PIN_MISMATCH, timeout_s
            )
        except TimeoutError:
            pass
        if not self.is_up:
            raise self.unavailable()

    def unavailable(self) -> AgentUnavailable:
        why = self.state.link.value.replace("_", " ")
        if self.state.error:
            why += f" ({self.state.error})"
        return AgentUnavailable(self.name, why)

    # -- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff, until cancelled (never raises for the agent)."""
        failures = 0
        while True:
            was_up = False
            try:
                was_up = await self._session()
                error, link = "connection closed", LinkState.DOWN
            except asyncio.CancelledError:
                self._set_state(LinkState.DOWN, "console stopped")
                raise
            except PinMismatch as exc:
                log.error("%s", exc.message)
                self.attempts += 1
                self._set_state(LinkState.PIN_MISMATCH, exc.message)
                return  # never retried: an operator has to look (DESIGN.md)
            except LoginRefused as exc:
                error, link = exc.message, LinkState.AUTH_FAILED
            except SquError as exc:
                error, link = exc.message, LinkState.DOWN
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError, ConnectionClosed) as exc:
                error, link = _describe(exc), LinkState.DOWN
            except Exception as exc:  # top of a long-lived loop (STYLE.md 7): log, go on
                log.exception("link to %s failed", self.name)
                error, link = f"internal error: {exc!r}", LinkState.DOWN
            self.attempts += 1
            if was_up:
                failures = 0
            self._set_state(link, error)
            if link is LinkState.AUTH_FAILED:
                delay = self.backoff.max_s  # a refusal is not fixed by hammering
            else:
                delay = self.backoff.delay_s(failures, self.rng)
            failures += 1
            log.info("link %s %s (%s); retrying in %.1f s", self.name, link.value, error, delay)
            await asyncio.sleep(delay)

    async def _session(self) -> bool:
        """One connection from open to close; returns whether the login succeeded."""
        self._set_state(LinkState.CONNECTING, "")
        url = self.entry.url
        tls = _client_tls() if urlsplit(url).scheme == "wss" else None
        limits = Limits(request_timeout_s=self.request_timeout_s)
        ws = await connect(
            url,
            ssl=tls,
            compression=None,  # docs/protocol.md: deflate costs throughput and memory
            open_timeout=self.open_timeout_s,
            ping_interval=20.0,
            ping_timeout=20.0,
            close_timeout=5.0,
            max_size=limits.max_frame_bytes + 64 * 1024,
            max_queue=64,
            write_limit=256 * 1024,
            user_agent_header=None,
            proxy=None,
        )
        conn = Connection("client", limits=limits)
        self._conn, self._ws = conn, ws
        self._welcome = asyncio.get_running_loop().create_future()
        self._login_error = None
        workers: list[asyncio.Task[None]] = []
        try:
            if tls is not None:
                self._check_pin(ws)
            reader = asyncio.create_task(self._read(ws, conn), name=f"link-read {self.name}")
            ticker = asyncio.create_task(self._tick(conn), name=f"link-tick {self.name}")
            workers = [reader, ticker]
            done, _ = await asyncio.wait(
                {reader, self._welcome},
                timeout=limits.challenge_ttl_s,
                return_when="FIRST_COMPLETED",
            )
            if self._welcome not in done or self._welcome.exception() is not None:
                raise self._refusal(ws)
            self._set_state(LinkState.UP, "", last_seen=time.time())
            workers.append(asyncio.create_task(self._keep_in_sync(), name=f"link-sync {self.name}"))
            await reader
            return True
        finally:
            for task in workers:
                task.cancel()
            with contextlib.suppress(Exception):
                await ws.close()
            await asyncio.gather(*workers, return_exceptions=True)
            self._closed(conn, ws)
            self._conn = self._ws = None

    def _refusal(self, ws: ClientConnection) -> SquError:
        error = self._login_error
        code = ws.close_code
        reason = ws.close_reason or ""
        if error is not None and (error.code in _AUTH_CODES or code == _AUTH_CLOSE):
            return LoginRefused(self.name, f"{error.message} [{error.code}]")
        if code == _AUTH_CLOSE:
            return LoginRefused(self.name, reason or "login refused")
        if error is not None:
            return SquError(f"agent {self.name}: {error.message} [{error.code}]")
        if code is not None:
            return SquError(f"agent {self.name} closed the link before login ({code} {reason})")
        return SquError(f"agent {self.name} did not complete the login in time")

    def _check_pin(self, ws: ClientConnection) -> None:
        ssl_object = ws.transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            raise SquError(f"agent {self.name} presented no TLS certificate")
        presented = der_fingerprint(der)
        pinned = self.entry.fingerprint
        if not pinned:
            # First use pins (DESIGN.md: like SSH's known_hosts).
            log.warning("pinning %s's certificate %s (first use)", self.name, presented)
            self.entry = replace(self.entry, fingerprint=presented)
            if self.on_pin is not None:
                self.on_pin(self.name, presented)
            return
        if presented != pinned:
            raise PinMismatch(self.name, pinned, presented)

    async def _read(self, ws: ClientConnection, conn: Connection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for text in ws:
                conn.receive_text(text, time.time())
                self._handle(conn, conn.events_received())
                if frames := conn.data_to_send():  # a reply (hello): most frames need none
                    for frame in frames:
                        await ws.send(frame)
                if (close := conn.close_requested()) is not None:
                    await ws.close(*close)
                    return

    async def _tick(self, conn: Connection) -> None:
        # Request timeouts live in the Connection; it only needs the time now and then.
        # With 1,000 links this runs 1,000 times a second: an idle tick must cost nothing.
        while True:
            await asyncio.sleep(1.0)
            conn.tick(time.time())
            if events := conn.events_received():
                self._handle(conn, events)

    async def _flush(self, conn: Connection, ws: ClientConnection) -> None:
        for frame in conn.data_to_send():
            await ws.send(frame)

    def _closed(self, conn: Connection, ws: ClientConnection) -> None:
        code = ws.close_code if ws.close_code is not None else 1006
        conn.receive_closed(code, ws.close_reason or "")
        self._handle(conn, conn.events_received())
        for future in self._replies.values():
            if not future.done():
                future.set_exception(self.unavailable())
        self._replies.clear()
        if self._welcome is not None and not self._welcome.done():
            self._welcome.set_exception(SquError("closed before welcome"))
            self._welcome.exception()  # retrieved: never "exception was never retrieved"

    def _handle(self, conn: Connection, events: list[Event]) -> None:
        now = time.time()
        for event in events:
            if isinstance(event, HelloReceived):
                assert isinstance(event.hello, ServerHello)
                self.state = replace(self.state, version=event.hello.agent_version)
                conn.send_hello(make_client_hello(event.hello, self.key, client=self.client))
            elif isinstance(event, Welcomed):
                self.operator, self.role = event.operator, str(event.role)
                if self._welcome is not None and not self._welcome.done():
                    self._welcome.set_result(None)
            elif isinstance(event, ResultReceived):
                future = self._replies.pop(event.id, None)
                if future is not None and not future.done():
                    future.set_result(event.result)
            elif isinstance(event, ErrorReceived):
                future = self._replies.pop(event.id, None) if event.id is not None else None
                if future is not None:
                    if not future.done():
                        future.set_exception(
                            AgentError(self.name, event.code, event.message, event.details)
                        )
                elif self._welcome is not None and not self._welcome.done():
                    self._login_error = event
            elif isinstance(event, EventPushed):
                self._pushed(event.topic, event.payload, now)
            elif isinstance(event, ProtocolViolation):
                log.warning("agent %s broke the protocol: %s", self.name, event.message)
            elif isinstance(event, Closed):
                log.debug("link %s closed: %s %s", self.name, event.code, event.reason)
        self._seen(now)

    def _seen(self, now: float) -> None:
        # last_seen is shown to the second ("3s ago"): rebuilding the frozen state on
        # every frame cost a tenth of a reply's CPU with 1,000 links (bench fleet).
        seen = self.state.last_seen
        if self.is_up and (seen is None or now - seen >= LAST_SEEN_RESOLUTION_S):
            self.state = replace(self.state, last_seen=now)

    def _pushed(self, topic: str, payload: Any, now: float) -> None:
        if topic == "executions" and isinstance(payload, Execution):
            self._sync_wanted.set()
        elif topic == "jobs" and isinstance(payload, JobChanged):
            self._jobs_wanted.set()
        elif topic == "alerts" and isinstance(payload, Alert):
            self._emit(AlertRaised(self.name, payload))
        elif topic == "heartbeat" and isinstance(payload, Heartbeat):
            metrics = HostMetrics(
                load=(payload.load_1, payload.load_5, payload.load_15),
                cpu_pct=payload.cpu_percent,
                mem_pct=payload.memory_percent,
                disk_pct=payload.disk_percent,
                running=payload.running,
                containment=payload.containment,
            )
            self.state = replace(
                self.state, metrics=metrics, version=payload.agent_version, last_seen=now
            )
            self._emit(AgentStateChanged(self.name))

    # -- requests ------------------------------------------------------------------------

    async def call(self, method: str, params: Any, *, timeout_s: float | None = None) -> Any:
        """Send one request and return its result; fails fast when the link is not up.

        Raises ``AgentUnavailable`` (link not up, or it dropped before the reply) or
        ``AgentError`` (the agent's error reply, its code in ``remote_code``).
        """
        conn, ws = self._conn, self._ws
        if conn is None or ws is None or not self.is_up:
            raise self.unavailable()
        rid = conn.send_request(method, params, time.time())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[rid] = future
        try:
            await self._flush(conn, ws)
        except ConnectionClosed:
            self._replies.pop(rid, None)
            raise self.unavailable() from None
        if timeout_s is None:
            # No timer of our own: the Connection fails the request after
            # ``request_timeout_s`` (``_tick``), and a closed session fails it at once
            # (``_closed``). A timer per request was a sixth of a reply's CPU at 1,000 links.
            return await future
        async with asyncio.timeout(timeout_s):
            return await future

    # -- keeping the mirror in step ------------------------------------------------------

    async def _keep_in_sync(self) -> None:
        """After login: subscribe, then mirror jobs and history, and again on every push."""
        try:
            # One round trip, not five: the info and every subscription are sent at once
            # (with 1,000 links, sequential requests kept the first sync going for seconds
            # and every action of the operator queued behind it; bench fleet).
            asks = [self.call("agent.info", Empty())]
            if self.subscribe:
                topics = ["heartbeat"]
                if self.mirror is not None:
                    topics += ["executions", "jobs"]
                asks += [self.call("subscribe", Subscribe(topic=t)) for t in topics]
                if self.mirror is not None:
                    # docs/alerts.md: toasts in the TUI. An agent older than alerts says
                    # "no topic 'alerts'": the rest of the link works without it.
                    asks.append(
                        _suppress_agent_error(self.call("subscribe", Subscribe(topic="alerts")))
                    )
            info, *_ = await _all(asks)
            self.epoch = info.epoch
            self.state = replace(self.state, version=info.agent_version)
            if self.mirror is None:
                return
            # Subscribed first, so a change made during the first pull still wakes a second.
            # Jobs and history are asked for side by side (their writes stay separate).
            await _all([self._mirror_jobs(), self.sync_history()])
            while True:
                waiter = asyncio.create_task(self._sync_wanted.wait())
                jobs = asyncio.create_task(self._jobs_wanted.wait())
                try:
                    await asyncio.wait({waiter, jobs}, return_when="FIRST_COMPLETED")
                finally:
                    waiter.cancel()
                    jobs.cancel()
                await asyncio.sleep(0.05)  # a burst of pushes becomes one pull
                if self._jobs_wanted.is_set():
                    self._jobs_wanted.clear()
                    await self._mirror_jobs()
                if self._sync_wanted.is_set():
                    self._sync_wanted.clear()
                    await self.sync_history()
        except AgentUnavailable:
            return  # the reader sees the close; run() reconnects
        except SquError as exc:
            log.warning("sync with %s stopped: %s", self.name, exc.message)
            self._set_state(LinkState.UP, f"sync failed: {exc.message}")

    async def _mirror_jobs(self) -> None:
        assert self.mirror is not None
        result = await self.call("jobs.list", Empty())
        await asyncio.to_thread(self.mirror.put_jobs, self.name, result.jobs, replace_all=True)
        self._emit(JobsChanged(self.name))

    async def sync_history(self, *, mirror: Mirror | None = None, batch: int = 500) -> int:
        """Pull every change after the mirror's cursor into the mirror; returns rows stored.

        Each batch and the cursor go in one transaction (``Mirror.upsert_executions``),
        so killing the console mid-sync loses nothing and repeats nothing. The next
        batch is asked for while this one is stored (the agent's query and the mirror's
        write overlap); its cursor is the one this batch will commit.
        """
        mirror = mirror or self.mirror
        if mirror is None:
            raise SquError("sync_history needs a mirror")
        cursor = await asyncio.to_thread(mirror.cursor, self.name)
        epoch, seq = (cursor.epoch, cursor.seq) if cursor is not None else (None, 0)
        stored = 0
        asking = self._ask_history(seq, batch)
        try:
            while True:
                got = await asking
                plan = plan_sync(epoch, seq, got)
                now = time.time()
                if plan.resync:
                    log.warning(
                        "agent %s has a new history epoch (%s, was %s): resyncing from the start",
                        self.name,
                        got.epoch,
                        epoch,
                    )
                    await asyncio.to_thread(mirror.reset_epoch, self.name, got.epoch, now=now)
                    epoch, seq = got.epoch, 0
                    asking = self._ask_history(seq, batch)
                    continue
                if plan.ask_again:
                    asking = self._ask_history(plan.next_seq, batch)
                if plan.gap is not None:
                    log.warning(
                        "agent %s no longer holds seqs %d-%d (retention): recording the gap",
                        self.name,
                        *plan.gap,
                    )
                    await asyncio.to_thread(
                        mirror.record_gap, self.name, got.epoch, seq, got.floor_seq, now=now
                    )
                ids = await asyncio.to_thread(
                    mirror.upsert_executions,
                    self.name,
                    got.epoch,
                    plan.apply,
                    plan.next_seq,
                    now=now,
                )
                stored += len(ids)
                if ids:
                    self._emit(ExecutionsChanged(self.name, ids))
                epoch, seq = got.epoch, plan.next_seq
                if not plan.ask_again:
                    return stored
        finally:
            if not asking.done():
                asking.cancel()
                await asyncio.gather(asking, return_exceptions=True)

    def _ask_history(self, seq: int, batch: int) -> asyncio.Future[Any]:
        return asyncio.ensure_future(self.call("history.since", HistorySince(seq=seq, limit=batch)))


async def _all(aws: Sequence[Awaitable[Any]]) -> list[Any]:
    """Await every one of ``aws`` side by side; then raise the first failure, if any.

    Unlike a bare ``gather`` no task is left running unowned when one fails: all
    have finished (each request has its own timeout) before the error goes up.
    """
    results = await asyncio.gather(*aws, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


async def _suppress_agent_error(aw: Awaitable[Any]) -> Any:
    with contextlib.suppress(AgentError):
        return await aw
    return None


def _describe(exc: BaseException) -> str:
    """A network failure in words, without a traceback."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is squ-agentd running and listening there?)"
    if isinstance(exc, TimeoutError):
        return "timed out connecting"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionClosed):
        return f"connection closed ({exc.rcvd.code if exc.rcvd else 1006})"
    text = str(exc) or type(exc).__name__
    return text
