"""A small real WebSocket client for the server tests: websockets + the protocol Connection.

The console's link does the same job for real; this one keeps every event so
tests can assert on refusals, replies and pushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from shared.identity import PrivateKey
from shared.protocol import (
    Closed,
    Connection,
    ErrorReceived,
    Event,
    EventPushed,
    HelloReceived,
    Limits,
    ResultReceived,
    ServerHello,
    Welcomed,
    make_client_hello,
)


class RemoteError(Exception):
    def __init__(self, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details


class Refused(Exception):
    """The agent refused the login (or closed before welcome)."""

    def __init__(self, code: str, message: str, close: tuple[int, str] | None) -> None:
        super().__init__(f"{code}: {message} (close {close})")
        self.code = code
        self.message = message
        self.close = close


class Client:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.conn = Connection("client", limits=Limits(request_timeout_s=20))
        self.events: asyncio.Queue[EventPushed] = asyncio.Queue()
        self.replies: dict[int, asyncio.Future[Any]] = {}
        self.welcome: asyncio.Future[Welcomed] = asyncio.get_running_loop().create_future()
        self.hello: asyncio.Future[ServerHello] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self.errors: list[ErrorReceived] = []
        self.frames: list[dict[str, Any]] = []  # every frame received, as JSON
        self._frame_arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, *, ssl_context: ssl.SSLContext | None = None) -> Client:
        ws = await connect(
            url, ssl=ssl_context, compression=None, max_size=4 * 1024 * 1024, open_timeout=10
        )
        return cls(ws)

    @classmethod
    async def login(
        cls, url: str, key: PrivateKey, *, ssl_context: ssl.SSLContext | None = None
    ) -> Client:
        client = await cls.open(url, ssl_context=ssl_context)
        hello = await asyncio.wait_for(client.hello, 10)
        await client.send_hello(make_client_hello(hello, key, client="pytest"))
        await client.wait_welcome()
        return client

    async def wait_welcome(self) -> Welcomed:
        done, _ = await asyncio.wait(
            {self.welcome, self.closed}, timeout=10, return_when="FIRST_COMPLETED"
        )
        if self.welcome in done:
            return self.welcome.result()
        last = self.errors[-1] if self.errors else None
        close = self.closed.result() if self.closed.done() else None
        raise Refused(last.code if last else "", last.message if last else "", close)

    async def send_hello(self, hello: Any) -> None:
        self.conn.send_hello(hello)
        await self._flush()

    async def send_raw(self, text: str | bytes) -> None:
        await self.ws.send(text)

    async def call(self, method: str, params: Any) -> Any:
        rid = self.conn.send_request(method, params, time.time())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.replies[rid] = future
        await self._flush()
        async with asyncio.timeout(20):
            return await future

    async def next_event(self, topic: str) -> Any:
        """The next pushed payload on ``topic`` (other topics are skipped); 10 s at most."""
        async with asyncio.timeout(10):
            while True:
                event = await self.events.get()
                if event.topic == topic:
                    return event.payload

    async def frame_where(self, **fields: Any) -> dict[str, Any]:
        """The first received frame whose fields equal ``fields`` (waits up to 10 s)."""
        async with asyncio.timeout(10):
            while True:
                for frame in self.frames:
                    if all(frame.get(k) == v for k, v in fields.items()):
                        return frame
                self._frame_arrived.clear()
                await self._frame_arrived.wait()

    async def raw_frames_until_close(self) -> tuple[int, str]:
        return await asyncio.wait_for(asyncio.shield(self.closed), 15)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(Exception):
            await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader

    async def _flush(self) -> None:
        for frame in self.conn.data_to_send():
            await self.ws.send(frame)

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                self.frames.append(msgspec.json.decode(text))
                self._frame_arrived.set()
                self.conn.receive_text(text, time.time())
                self._dispatch(self.conn.events_received())
        except ConnectionClosed:
            pass
        finally:
            code = self.ws.close_code if self.ws.close_code is not None else 1006
            reason = self.ws.close_reason or ""
            self.conn.receive_closed(code, reason)
            self._dispatch(self.conn.events_received())
            if not self.closed.done():
                self.closed.set_result((code, reason))

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, HelloReceived) and not self.hello.done():
                self.hello.set_result(event.hello)  # type: ignore[arg-type]
            elif isinstance(event, Welcomed) and not self.welcome.done():
                self.welcome.set_result(event)
            elif isinstance(event, ResultReceived):
                future = self.replies.pop(event.id, None)
                if future is not None and not future.done():
                    future.set_result(event.result)
            elif isinstance(event, ErrorReceived):
                self.errors.append(event)
                future = self.replies.pop(event.id, None) if event.id is not None else None
                if future is not None and not future.done():
                    future.set_exception(RemoteError(event.code, event.message, event.details))
            elif isinstance(event, EventPushed):
                self.events.put_nowait(event)
            elif isinstance(event, Closed) and not self.closed.done():
                self.closed.set_result((event.code, event.reason))


def encode(message: Any) -> str:
    return msgspec.json.encode(message).decode()
