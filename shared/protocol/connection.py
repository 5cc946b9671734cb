"""The protocol core: one ``Connection`` per WebSocket, for either side, with no I/O.

Shape (STYLE.md, after h11 and websockets): the I/O loop feeds what arrives
into ``receive_text(text, now)`` / ``receive_closed(code, reason)`` and calls
``tick(now)`` now and then; it reads typed events from ``events_received()``,
frames to send from ``data_to_send()`` and whether to close from
``close_requested()``. Remote input never raises: a bad frame becomes an error
reply or a close with a reason (and a ``ProtocolViolation`` event so the
session can log it). Our own misuse raises ``ProtocolMisuse`` at once.

Allowed steps are the ``TRANSITIONS`` table: (side, state, what happens) ->
next state. Anything not in the table is a violation when it comes from the
peer and a misuse when it comes from us.

Server: NEW --send hello--> HELLO_SENT --recv hello--> AUTHENTICATING
--accept (send welcome)--> OPEN; ``refuse`` sends an error and closes.
Client: NEW --recv hello--> HELLO_RECEIVED --send hello--> AUTHENTICATING
--recv welcome--> OPEN.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal

import msgspec

from shared.enums import Role
from shared.errors import SquError
from shared.protocol.catalogue import METHODS, TOPICS
from shared.protocol.errors import (
    CloseCode,
    ErrorCode,
    OversizedMessage,
    ProtocolMisuse,
    details_of,
    error_code_for,
)
from shared.protocol.limits import Limits
from shared.protocol.messages import (
    PROTOCOL_VERSION,
    ClientHello,
    ClientMessage,
    ErrorReply,
    EventMessage,
    Request,
    Result,
    ServerHello,
    ServerMessage,
    Welcome,
)

__all__ = [
    "TRANSITIONS",
    "Closed",
    "Connection",
    "ErrorReceived",
    "Event",
    "EventPushed",
    "HelloReceived",
    "ProtocolViolation",
    "RequestReceived",
    "ResultReceived",
    "State",
    "Step",
    "Welcomed",
]

Side = Literal["client", "server"]


class State(StrEnum):
    NEW = "new"
    HELLO_SENT = "hello_sent"  # server: waiting for the client's hello
    HELLO_RECEIVED = "hello_received"  # client: got the challenge, must answer
    AUTHENTICATING = "authenticating"
    OPEN = "open"
    CLOSED = "closed"


class Step(StrEnum):
    SEND_HELLO = "send hello"
    RECV_HELLO = "receive hello"
    SEND_WELCOME = "send welcome"
    RECV_WELCOME = "receive welcome"
    SEND_REQUEST = "send request"
    RECV_REQUEST = "receive request"
    SEND_RESULT = "send result"
    RECV_RESULT = "receive result"
    SEND_ERROR = "send error"
    RECV_ERROR = "receive error"
    SEND_EVENT = "send event"
    RECV_EVENT = "receive event"


_S: Final = "server"
_C: Final = "client"
TRANSITIONS: dict[tuple[Side, State, Step], State] = {
    (_S, State.NEW, Step.SEND_HELLO): State.HELLO_SENT,
    (_S, State.HELLO_SENT, Step.RECV_HELLO): State.AUTHENTICATING,
    (_S, State.AUTHENTICATING, Step.SEND_WELCOME): State.OPEN,
    # A refused login: the error is the last frame.
    (_S, State.AUTHENTICATING, Step.SEND_ERROR): State.CLOSED,
    (_S, State.OPEN, Step.RECV_REQUEST): State.OPEN,
    (_S, State.OPEN, Step.SEND_RESULT): State.OPEN,
    (_S, State.OPEN, Step.SEND_ERROR): State.OPEN,
    (_S, State.OPEN, Step.SEND_EVENT): State.OPEN,
    (_C, State.NEW, Step.RECV_HELLO): State.HELLO_RECEIVED,
    (_C, State.HELLO_RECEIVED, Step.SEND_HELLO): State.AUTHENTICATING,
    (_C, State.AUTHENTICATING, Step.RECV_WELCOME): State.OPEN,
    (_C, State.AUTHENTICATING, Step.RECV_ERROR): State.CLOSED,
    (_C, State.OPEN, Step.SEND_REQUEST): State.OPEN,
    (_C, State.OPEN, Step.RECV_RESULT): State.OPEN,
    (_C, State.OPEN, Step.RECV_ERROR): State.OPEN,
    (_C, State.OPEN, Step.RECV_EVENT): State.OPEN,
}


# -- events -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HelloReceived:
    """Server: check ``hello`` (auth.check_proof), then ``accept`` or ``refuse``.
    Client: answer with ``send_hello(make_client_hello(hello, key, ...))``."""

    hello: ServerHello | ClientHello


@dataclass(frozen=True, slots=True)
class Welcomed:
    """Client: the agent accepted the login; requests may be sent now."""

    operator: str
    role: Role
    limits: Limits


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """Server: run the handler, then ``send_result(id, ...)`` or ``send_error(id, ...)``."""

    id: int
    method: str
    params: Any


@dataclass(frozen=True, slots=True)
class ResultReceived:
    id: int
    method: str
    result: Any


@dataclass(frozen=True, slots=True)
class ErrorReceived:
    """The reply to request ``id`` (None: not about one request) was an error."""

    id: int | None
    code: str
    message: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EventPushed:
    topic: str
    payload: Any


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The peer sent something it must not; kept so the session can log it."""

    code: ErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class Closed:
    code: int
    reason: str


Event = (
    HelloReceived
    | Welcomed
    | RequestReceived
    | ResultReceived
    | ErrorReceived
    | EventPushed
    | ProtocolViolation
    | Closed
)

_ENCODER = msgspec.json.Encoder()
_SERVER_DECODER = msgspec.json.Decoder(ClientMessage)
_CLIENT_DECODER = msgspec.json.Decoder(ServerMessage)
_ROLE_NAMES = {"client", "server"}


class Connection:
    """One side of one connection. Not thread-safe; one I/O loop drives it."""

    def __init__(self, role: Side, *, limits: Limits | None = None) -> None:
        if role not in _ROLE_NAMES:
            raise ProtocolMisuse(f"role must be 'client' or 'server', not {role!r}")
        self.role: Side = role
        self.limits = limits or Limits()
        self.state = State.NEW
        self.operator = ""
        self.operator_role: Role | None = None
        self.hello_sent: ServerHello | ClientHello | None = None
        self._events: list[Event] = []
        self._out: list[str] = []
        self._close: tuple[int, str] | None = None
        self._closed_reported = False
        self._opened_at: float | None = None
        # server: request ids waiting for our reply -> method
        self._pending_in: dict[int, str] = {}
        # client: request ids waiting for the peer's reply -> (method, sent at)
        self._pending_out: dict[int, tuple[str, float]] = {}
        self._next_id = 1
        # token bucket (server side)
        self._tokens = float(self.limits.burst)
        self._tokens_at: float | None = None
        self._refused_in_a_row = 0

    # -- input (never raises on remote data) ------------------------------------------

    def receive_text(self, text: str | bytes, now: float) -> None:
        """Feed one received frame. Bad frames become error replies or a close."""
        if self.state is State.CLOSED:
            return
        self._start_clock(now)
        size = len(text)
        if size > self.limits.max_frame_bytes or (
            isinstance(text, str)
            and size * 4 > self.limits.max_frame_bytes
            and len(text.encode("utf-8", "surrogatepass")) > self.limits.max_frame_bytes
        ):
            self._violate(
                ErrorCode.TOO_LARGE,
                f"frame over the {self.limits.max_frame_bytes}-byte limit",
                CloseCode.MESSAGE_TOO_BIG,
            )
            return
        try:
            if self.role == "server":
                self._receive_server(_SERVER_DECODER.decode(text), now)
            else:
                self._receive_client(_CLIENT_DECODER.decode(text), now)
        except msgspec.ValidationError as exc:
            self._bad_frame(text, f"not a valid message: {exc}")
        except (msgspec.DecodeError, UnicodeError) as exc:
            self._bad_frame(text, f"not JSON: {exc}")
        except RecursionError:
            # msgspec raises this for absurdly deep nesting ([[[[...): hostile, not a bug.
            self._bad_frame(text, "JSON nested too deeply")

    def receive_closed(self, code: int, reason: str) -> None:
        """The transport closed (either side started it). Pending requests fail."""
        if self._closed_reported:
            return
        self._closed_reported = True
        for rid in list(self._pending_out):
            self._pending_out.pop(rid)
            self._events.append(
                ErrorReceived(
                    rid, ErrorCode.CLOSED, f"connection closed before the reply ({reason})", {}
                )
            )
        self._pending_in.clear()
        self.state = State.CLOSED
        self._events.append(Closed(code, reason))

    def tick(self, now: float) -> None:
        """Time passes: hello timeout (server), request timeouts (client)."""
        if self.state is State.CLOSED:
            return
        self._start_clock(now)
        assert self._opened_at is not None
        if (
            self.role == "server"
            and self.state in (State.NEW, State.HELLO_SENT)
            and now - self._opened_at > self.limits.hello_timeout_s
        ):
            self._violate(
                ErrorCode.UNAUTHENTICATED,
                f"no hello within {self.limits.hello_timeout_s:g} s",
                CloseCode.HELLO_TIMEOUT,
            )
            return
        if self.role == "client":
            deadline = now - self.limits.request_timeout_s
            for rid, (method, sent_at) in list(self._pending_out.items()):
                if sent_at < deadline:
                    del self._pending_out[rid]
                    self._events.append(
                        ErrorReceived(
                            rid,
                            ErrorCode.TIMEOUT,
                            f"no reply to {method} within {self.limits.request_timeout_s:g} s",
                            {},
                        )
                    )

    # -- output -------------------------------------------------------------------------

    def events_received(self) -> list[Event]:
        """Events since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[str]:
        """Text frames to send, in order, since the last call."""
        out, self._out = self._out, []
        return out

    def close_requested(self) -> tuple[int, str] | None:
        """(code, reason) once this side wants the transport closed (after sending data)."""
        return self._close

    @property
    def pending_requests(self) -> int:
        return len(self._pending_in) if self.role == "server" else len(self._pending_out)

    # -- commands (raise on misuse) -----------------------------------------------------

    def send_hello(self, hello: ServerHello | ClientHello) -> None:
        """Server: the first frame (``auth.new_server_hello``). Client: the answer."""
        wanted = ServerHello if self.role == "server" else ClientHello
        if not isinstance(hello, wanted):
            raise ProtocolMisuse(f"a {self.role} sends a {wanted.__name__}")
        self._step(Step.SEND_HELLO, local=True)
        if isinstance(hello, ServerHello):
            self._start_clock(hello.issued_at)  # the hello timeout runs from here
        self.hello_sent = hello
        self._emit(hello)

    def accept(self, operator: str, role: Role) -> None:
        """Server: the login checked out; send ``welcome``. Requests are served from now on."""
        self._require_server("accept")
        self._step(Step.SEND_WELCOME, local=True)
        self.operator, self.operator_role = operator, role
        self._emit(Welcome(operator=operator, role=role, limits=self.limits))

    def refuse(self, error: SquError) -> None:
        """Server: the login failed; send the reason and close."""
        self._require_server("refuse")
        self._step(Step.SEND_ERROR, local=True)
        code = error_code_for(error)
        self._emit(ErrorReply(id=None, code=code, message=error.message, details=details_of(error)))
        close = (
            CloseCode.UNSUPPORTED_VERSION
            if code is ErrorCode.UNSUPPORTED_VERSION
            else CloseCode.AUTH_REFUSED
        )
        self._close = (close, _reason(error.message))

    def send_request(self, method: str, params: Any, now: float) -> int:
        """Client: send a request; returns its id. Exactly one reply event will follow."""
        if self.role != "client":
            raise ProtocolMisuse("only a client sends requests")
        spec = METHODS.get(method)
        if spec is None:
            raise ProtocolMisuse(f"unknown method {method!r}")
        if not isinstance(params, spec.params):
            raise ProtocolMisuse(f"{method} takes {spec.params.__name__}, not {type(params)}")
        self._step(Step.SEND_REQUEST, local=True)
        rid = self._next_id
        self._next_id += 1
        self._emit(Request(id=rid, method=method, params=msgspec.Raw(_ENCODER.encode(params))))
        self._pending_out[rid] = (method, now)
        return rid

    def send_result(self, request_id: int, result: Any) -> None:
        """Server: the one successful reply to ``request_id``.

        Raises ``OversizedMessage`` (nothing sent, the request still pending) if
        it would not fit in one frame, so the caller can send an error instead.
        """
        method = self._reply_to(request_id)
        spec = METHODS[method]
        if not isinstance(result, spec.result):
            raise ProtocolMisuse(f"{method} returns {spec.result.__name__}, not {type(result)}")
        self._step(Step.SEND_RESULT, local=True)
        frame = _ENCODER.encode(Result(id=request_id, result=msgspec.Raw(_ENCODER.encode(result))))
        if len(frame) > self.limits.max_frame_bytes:
            raise OversizedMessage(
                f"the result of {method}", len(frame), self.limits.max_frame_bytes
            )
        del self._pending_in[request_id]
        self._out.append(frame.decode())

    def send_error(
        self,
        request_id: int | None,
        code: ErrorCode,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Server: the one error reply to ``request_id`` (None: about no request)."""
        if request_id is not None:
            self._reply_to(request_id)
        self._step(Step.SEND_ERROR, local=True)
        if request_id is not None:
            del self._pending_in[request_id]
        self._emit(ErrorReply(id=request_id, code=code, message=message, details=details or {}))

    def send_exception(self, request_id: int, error: SquError) -> None:
        """Server: reply to ``request_id`` with a domain error, its code mapped for the wire."""
        self.send_error(request_id, error_code_for(error), error.message, details_of(error))

    def push(self, topic: str, payload: Any) -> None:
        """Server: push an event on ``topic`` (the session decides who subscribed)."""
        self._require_server("push")
        spec = TOPICS.get(topic)
        if spec is None:
            raise ProtocolMisuse(f"unknown topic {topic!r}")
        if not isinstance(payload, spec.payload):
            raise ProtocolMisuse(f"{topic} carries {spec.payload.__name__}, not {type(payload)}")
        self._step(Step.SEND_EVENT, local=True)
        frame = _ENCODER.encode(
            EventMessage(topic=topic, payload=msgspec.Raw(_ENCODER.encode(payload)))
        )
        if len(frame) > self.limits.max_frame_bytes:
            raise OversizedMessage(f"the {topic} event", len(frame), self.limits.max_frame_bytes)
        self._out.append(frame.decode())

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Ask for the transport to be closed; nothing more is sent or accepted."""
        if self._close is None:
            self._close = (code, _reason(reason))
        self.state = State.CLOSED

    # -- internals ------------------------------------------------------------------------

    def _start_clock(self, now: float) -> None:
        if self._opened_at is None:
            self._opened_at = now
        if self._tokens_at is None:
            self._tokens_at = now

    def _require_server(self, what: str) -> None:
        if self.role != "server":
            raise ProtocolMisuse(f"only a server may {what}")

    def _step(self, step: Step, *, local: bool) -> bool:
        """Apply ``step``; a local misuse raises, a remote one is a violation (False)."""
        nxt = TRANSITIONS.get((self.role, self.state, step))
        if nxt is None:
            if local:
                raise ProtocolMisuse(f"cannot {step} while {self.state} (as {self.role})")
            return False
        self.state = nxt
        return True

    def _emit(self, message: Any) -> None:
        self._out.append(_ENCODER.encode(message).decode())

    def _reply_to(self, request_id: int) -> str:
        self._require_server("reply")
        method = self._pending_in.get(request_id)
        if method is None:
            raise ProtocolMisuse(f"request {request_id} is not waiting for a reply")
        return method

    def _violate(self, code: ErrorCode, message: str, close: int) -> None:
        """The peer broke the protocol: tell it (server), record it, and close."""
        self._events.append(ProtocolViolation(code, message))
        if self.role == "server" and self.state is not State.CLOSED:
            self._emit(ErrorReply(id=None, code=code, message=message))
        self.close(close, message)

    def _bad_frame(self, text: str | bytes, message: str) -> None:
        """A frame that does not decode: an error reply while the budget lasts, then a close."""
        if self.role == "client" or self.state is not State.OPEN:
            # Before login, and from an agent, there is no second chance.
            self._violate(ErrorCode.BAD_REQUEST, message, CloseCode.POLICY_VIOLATION)
            return
        self._events.append(ProtocolViolation(ErrorCode.BAD_REQUEST, message))
        rid = _salvage_id(text)
        if rid is not None and rid in self._pending_in:
            rid = None  # never a second reply to a pending id
        self._refuse_request(rid, ErrorCode.BAD_REQUEST, message)

    def _refuse_request(self, rid: int | None, code: ErrorCode, message: str) -> None:
        self._refused_in_a_row += 1
        if self._refused_in_a_row > self.limits.max_refused:
            self._violate(
                code,
                f"{self._refused_in_a_row} refused requests in a row; last: {message}",
                CloseCode.FLOOD if code is ErrorCode.RATE_LIMITED else CloseCode.POLICY_VIOLATION,
            )
            return
        self._emit(ErrorReply(id=rid, code=code, message=message))

    def _take_token(self, now: float) -> bool:
        assert self._tokens_at is not None
        elapsed = max(0.0, now - self._tokens_at)
        self._tokens = min(
            float(self.limits.burst), self._tokens + elapsed * self.limits.requests_per_s
        )
        self._tokens_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _receive_step(self, step: Step, what: str) -> bool:
        """Take an incoming step; a message the table does not allow now closes the link."""
        if self._step(step, local=False):
            return True
        self._violate(
            ErrorCode.BAD_REQUEST,
            f"unexpected {what} while {self.state}",
            CloseCode.POLICY_VIOLATION,
        )
        return False

    def _receive_server(self, message: ClientHello | Request, now: float) -> None:
        if isinstance(message, ClientHello):
            if not self._receive_step(Step.RECV_HELLO, "hello"):
                return
            if message.version != PROTOCOL_VERSION:
                self._violate(
                    ErrorCode.UNSUPPORTED_VERSION,
                    f"protocol version {message.version} is not supported; "
                    f"this agent speaks version {PROTOCOL_VERSION}",
                    CloseCode.UNSUPPORTED_VERSION,
                )
                return
            self._events.append(HelloReceived(message))
            return
        if self.state is not State.OPEN:
            self._violate(
                ErrorCode.UNAUTHENTICATED,
                f"request {message.method!r} before a successful hello",
                CloseCode.POLICY_VIOLATION,
            )
            return
        self._receive_request(message, now)

    def _receive_request(self, request: Request, now: float) -> None:
        if request.id in self._pending_in:
            self._violate(
                ErrorCode.BAD_REQUEST,
                f"request id {request.id} is already waiting for a reply",
                CloseCode.POLICY_VIOLATION,
            )
            return
        if not self._take_token(now):
            self._refuse_request(
                request.id,
                ErrorCode.RATE_LIMITED,
                f"over {self.limits.requests_per_s:g} requests/s "
                f"(burst {self.limits.burst}); slow down",
            )
            return
        if len(self._pending_in) >= self.limits.max_in_flight:
            self._refuse_request(
                request.id,
                ErrorCode.RATE_LIMITED,
                f"{self.limits.max_in_flight} requests already waiting for replies",
            )
            return
        spec = METHODS.get(request.method)
        if spec is None:
            self._refuse_request(
                request.id, ErrorCode.UNKNOWN_METHOD, f"no method {request.method!r}"
            )
            return
        assert self.operator_role is not None
        if not self.operator_role.allows(spec.min_role):
            self._refuse_request(
                request.id,
                ErrorCode.FORBIDDEN,
                f"{request.method} needs role {spec.min_role}; "
                f"{self.operator} is {self.operator_role}",
            )
            return
        try:
            params = msgspec.json.decode(request.params, type=spec.params)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
            self._refuse_request(
                request.id,
                ErrorCode.INVALID_PARAMS,
                f"{request.method}: {exc}".replace("$", "params", 1),
            )
            return
        self._refused_in_a_row = 0
        self._step(Step.RECV_REQUEST, local=False)
        self._pending_in[request.id] = request.method
        self._events.append(RequestReceived(request.id, request.method, params))

    def _receive_client(
        self, message: ServerHello | Welcome | Result | ErrorReply | EventMessage, now: float
    ) -> None:
        if isinstance(message, ServerHello):
            if not self._receive_step(Step.RECV_HELLO, "hello"):
                return
            if message.version != PROTOCOL_VERSION:
                self._violate(
                    ErrorCode.UNSUPPORTED_VERSION,
                    f"agent speaks protocol version {message.version}; "
                    f"this console speaks {PROTOCOL_VERSION}",
                    CloseCode.UNSUPPORTED_VERSION,
                )
                return
            self._events.append(HelloReceived(message))
        elif isinstance(message, Welcome):
            if not self._receive_step(Step.RECV_WELCOME, "welcome"):
                return
            self.operator, self.operator_role = message.operator, message.role
            self._events.append(Welcomed(message.operator, message.role, message.limits))
        elif isinstance(message, ErrorReply):
            self._receive_error(message)
        elif isinstance(message, Result):
            if not self._receive_step(Step.RECV_RESULT, "result"):
                return
            pending = self._pending_out.pop(message.id, None)
            if pending is None:
                self._unknown_reply(message.id)
                return
            method = pending[0]
            try:
                result = msgspec.json.decode(message.result, type=METHODS[method].result)
            except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
                self._events.append(
                    ErrorReceived(
                        message.id,
                        ErrorCode.BAD_RESPONSE,
                        f"{method}: the agent's result is not valid: {exc}",
                        {},
                    )
                )
                return
            self._events.append(ResultReceived(message.id, method, result))
        else:
            if not self._receive_step(Step.RECV_EVENT, "event"):
                return
            spec = TOPICS.get(message.topic)
            if spec is None:
                # A newer agent may push topics this console does not know yet: ignore, don't fail.
                return
            try:
                payload = msgspec.json.decode(message.payload, type=spec.payload)
            except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
                self._events.append(
                    ProtocolViolation(ErrorCode.BAD_RESPONSE, f"{message.topic} event: {exc}")
                )
                return
            self._events.append(EventPushed(message.topic, payload))

    def _receive_error(self, message: ErrorReply) -> None:
        if not self._receive_step(Step.RECV_ERROR, "error"):
            return
        if message.id is not None:
            if self._pending_out.pop(message.id, None) is None:
                self._unknown_reply(message.id)
                return
        self._events.append(
            ErrorReceived(message.id, message.code, message.message, dict(message.details))
        )

    def _unknown_reply(self, rid: int) -> None:
        # A late reply to a request that already timed out is normal; one to an id
        # we never sent is the agent's bug, worth a log line but not a close.
        if not 0 < rid < self._next_id:
            self._events.append(
                ProtocolViolation(ErrorCode.BAD_RESPONSE, f"reply to unknown request id {rid}")
            )


def _salvage_id(text: str | bytes) -> int | None:
    """The ``id`` of a frame that failed validation, if it has a usable one (for the reply)."""
    try:
        raw = msgspec.json.decode(text)
    except (msgspec.DecodeError, UnicodeError, RecursionError):
        return None
    rid = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid <= 2**53:
        return rid
    return None


def _reason(text: str) -> str:
    """A close reason must fit in a control frame (123 UTF-8 bytes)."""
    data = text.encode()
    if len(data) <= 123:
        return text
    return data[:120].decode("utf-8", "ignore") + "..."
