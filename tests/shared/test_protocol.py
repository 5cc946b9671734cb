"""The protocol core (shared/protocol/connection.py): two Connections back to back, no loop."""

from __future__ import annotations

import msgspec
import pytest

from shared.enums import Role
from shared.errors import UnknownJob
from shared.models import Execution, Job, JobRecord
from shared.protocol import (
    METHODS,
    PROTOCOL_VERSION,
    TOPICS,
    TRANSITIONS,
    CloseCode,
    Closed,
    Connection,
    Empty,
    ErrorCode,
    ErrorReceived,
    ErrorReply,
    EventPushed,
    ExecutionId,
    HelloReceived,
    JobName,
    JobsResult,
    Limits,
    OversizedMessage,
    ProtocolMisuse,
    ProtocolViolation,
    RequestReceived,
    ResultReceived,
    RunParams,
    RunResult,
    State,
    Step,
    Welcomed,
    error_code_for,
    make_client_hello,
)
from tests.shared.protocol_helpers import T0, Pair, operator


def record(name: str = "backup") -> JobRecord:
    return JobRecord(
        job=Job(name=name, command="true"),
        version=1,
        source="console",
        definition_hash="h",
        created_at=T0,
        updated_at=T0,
    )


def violations(events: list[object]) -> list[ProtocolViolation]:
    return [e for e in events if isinstance(e, ProtocolViolation)]


def errors(events: list[object]) -> list[ErrorReceived]:
    return [e for e in events if isinstance(e, ErrorReceived)]


def sent_errors(conn: Connection) -> list[ErrorReply]:
    """The error frames ``conn`` wants to send, decoded."""
    frames = [msgspec.json.decode(f) for f in conn.data_to_send()]
    return [msgspec.convert(f, ErrorReply) for f in frames if f["type"] == "error"]


# -- happy paths ------------------------------------------------------------------------


def test_login_opens_both_ends() -> None:
    """hello, signed hello, welcome: both ends are OPEN and the client knows its role."""
    pair = Pair()
    pair.login(Role.OPERATOR)
    assert pair.server.state is State.OPEN and pair.client.state is State.OPEN
    welcomed = [e for e in pair.client_events if isinstance(e, Welcomed)]
    assert welcomed == [Welcomed("alice", Role.OPERATOR, Limits())]


def test_request_gets_exactly_one_result() -> None:
    """A request arrives typed on the server, and its result arrives typed on the client."""
    pair = Pair()
    pair.login()
    rid = pair.client.send_request("jobs.get", JobName(name="backup"), T0)
    pair.pump()
    assert pair.server_events[-1] == RequestReceived(rid, "jobs.get", JobName(name="backup"))
    pair.server.send_result(rid, record())
    pair.pump()
    assert pair.client_events[-1] == ResultReceived(rid, "jobs.get", record())
    assert pair.client.pending_requests == 0 and pair.server.pending_requests == 0


def test_domain_error_keeps_its_code_and_message() -> None:
    """A SquError from a handler reaches the client with its code, message and details."""
    pair = Pair()
    pair.login()
    rid = pair.client.send_request("jobs.get", JobName(name="nope"), T0)
    pair.pump()
    pair.server.send_exception(rid, UnknownJob("nope", "db1"))
    pair.pump()
    err = pair.client_events[-1]
    assert err == ErrorReceived(
        rid, "unknown_job", "no job named 'nope' on agent db1", {"job": "nope", "agent": "db1"}
    )


def test_pushed_event_arrives_typed() -> None:
    """push(topic, payload) arrives as EventPushed with the payload decoded."""
    pair = Pair()
    pair.login()
    ex = Execution(
        id="E1", job="backup", server="db1", run_id="R1", trigger="manual", status="running"
    )
    pair.server.push("executions", ex)
    pair.pump()
    assert pair.client_events[-1] == EventPushed("executions", ex)


def test_client_close_fails_pending_requests() -> None:
    """A closed connection answers every pending request with a 'closed' error, then Closed."""
    pair = Pair()
    pair.login()
    rid = pair.client.send_request("jobs.list", Empty(), T0)
    pair.client.receive_closed(1006, "connection lost")
    events = pair.client.events_received()
    assert events[0] == ErrorReceived(
        rid, ErrorCode.CLOSED, "connection closed before the reply (connection lost)", {}
    )
    assert events[1] == Closed(1006, "connection lost")


def test_request_times_out_on_tick() -> None:
    """tick() past request_timeout_s fails a pending request with 'timeout' exactly once."""
    pair = Pair(Limits(request_timeout_s=5))
    pair.login()
    rid = pair.client.send_request("jobs.list", Empty(), T0)
    pair.client.tick(T0 + 4)
    assert pair.client.events_received() == []
    pair.client.tick(T0 + 6)
    (event,) = pair.client.events_received()
    assert isinstance(event, ErrorReceived) and (event.id, event.code) == (rid, ErrorCode.TIMEOUT)
    pair.client.tick(T0 + 60)
    assert pair.client.events_received() == []


def test_late_reply_after_timeout_is_ignored() -> None:
    """A reply that arrives after its request timed out produces no event and no violation."""
    pair = Pair(Limits(request_timeout_s=5))
    pair.login()
    rid = pair.client.send_request("jobs.list", Empty(), T0)
    pair.pump()
    pair.client.tick(T0 + 6)
    pair.client.events_received()
    pair.server.send_result(rid, JobsResult(jobs=[]))
    pair.pump()
    assert [e for e in pair.client_events if isinstance(e, ResultReceived)] == []
    assert violations(pair.client_events) == []


# -- the table ----------------------------------------------------------------------------


@pytest.mark.parametrize(("side", "state", "step"), list(TRANSITIONS))
def test_every_table_entry_is_reachable(side: str, state: State, step: Step) -> None:
    """Every (side, state, step) in TRANSITIONS names a real state and step."""
    assert TRANSITIONS[(side, state, step)] in State  # type: ignore[index]


def test_server_cannot_send_result_before_open() -> None:
    """Our own misuse raises at once: a reply to a request that never came."""
    server = Connection("server")
    with pytest.raises(ProtocolMisuse):
        server.send_result(1, JobsResult(jobs=[]))


def test_client_cannot_send_request_before_welcome() -> None:
    """send_request before the login finished raises ProtocolMisuse."""
    client = Connection("client")
    with pytest.raises(ProtocolMisuse, match="cannot send request while new"):
        client.send_request("jobs.list", Empty(), T0)


def test_wrong_params_type_is_misuse() -> None:
    """send_request with another method's params type raises ProtocolMisuse."""
    pair = Pair()
    pair.login()
    with pytest.raises(ProtocolMisuse, match=r"jobs\.get takes JobName"):
        pair.client.send_request("jobs.get", Empty(), T0)


def test_wrong_result_type_is_misuse() -> None:
    """send_result with the wrong result type raises ProtocolMisuse."""
    pair = Pair()
    pair.login()
    rid = pair.client.send_request("run", RunParams(job="backup"), T0)
    pair.pump()
    with pytest.raises(ProtocolMisuse, match="run returns RunResult"):
        pair.server.send_result(rid, Empty())


def test_second_reply_is_misuse() -> None:
    """Exactly one reply per request: a second one raises."""
    pair = Pair()
    pair.login()
    rid = pair.client.send_request("run", RunParams(job="backup"), T0)
    pair.pump()
    pair.server.send_result(rid, RunResult(execution_id="E1"))
    with pytest.raises(ProtocolMisuse, match="not waiting"):
        pair.server.send_error(rid, ErrorCode.INTERNAL, "again")


def test_push_unknown_topic_is_misuse() -> None:
    """push() on a topic not in TOPICS raises."""
    pair = Pair()
    pair.login()
    with pytest.raises(ProtocolMisuse, match="unknown topic"):
        pair.server.push("weather", Empty())


def test_oversized_result_raises_and_leaves_request_pending() -> None:
    """A result over the frame limit raises OversizedMessage; an error reply can follow."""
    pair = Pair(Limits(max_frame_bytes=2000))
    pair.login()
    rid = pair.client.send_request("jobs.list", Empty(), T0)
    pair.pump()
    with pytest.raises(OversizedMessage):
        pair.server.send_result(rid, JobsResult(jobs=[record(f"j{i}") for i in range(50)]))
    pair.server.send_error(rid, ErrorCode.TOO_LARGE, "too many jobs")
    pair.pump()
    assert errors(pair.client_events)[-1].code == ErrorCode.TOO_LARGE


# -- refusals (remote input never raises) --------------------------------------------------


def test_request_before_hello_is_refused_and_closed() -> None:
    """A request before login gets 'unauthenticated' and the connection closes."""
    pair = Pair()
    pair.start()
    pair.server.receive_text('{"type":"request","id":1,"method":"jobs.list"}', T0)
    assert violations(pair.server.events_received())[0].code == ErrorCode.UNAUTHENTICATED
    assert pair.server.close_requested() == (
        CloseCode.POLICY_VIOLATION,
        "request 'jobs.list' before a successful hello",
    )


def test_no_hello_in_time_closes() -> None:
    """A client that never says hello is closed after hello_timeout_s."""
    pair = Pair(Limits(hello_timeout_s=10))
    pair.start()
    pair.server.tick(T0 + 5)
    assert pair.server.close_requested() is None
    pair.server.tick(T0 + 11)
    assert pair.server.close_requested() == (CloseCode.HELLO_TIMEOUT, "no hello within 10 s")


def test_bad_version_is_refused() -> None:
    """A hello with another protocol version is refused with 'unsupported_version'."""
    pair = Pair()
    got = pair.start()
    key, _ = operator("a", Role.ADMIN)
    hello = make_client_hello(got.hello, key, client="old")  # type: ignore[arg-type]
    frame = (
        msgspec.json.encode(hello).decode().replace(f'"version":{PROTOCOL_VERSION}', '"version":99')
    )
    pair.server.receive_text(frame, T0)
    assert pair.server.close_requested()[0] == CloseCode.UNSUPPORTED_VERSION  # type: ignore[index]
    (err,) = sent_errors(pair.server)
    assert err.code == ErrorCode.UNSUPPORTED_VERSION
    assert err.message == "protocol version 99 is not supported; this agent speaks version 1"


def test_refused_login_reaches_client_with_reason() -> None:
    """refuse(error) sends the reason, closes with AUTH_REFUSED, and the client sees both."""
    from shared.identity import UnknownKey

    pair = Pair()
    got = pair.start()
    key, _ = operator("a", Role.ADMIN)
    pair.client.send_hello(make_client_hello(got.hello, key, client="t"))  # type: ignore[arg-type]
    pair.pump()
    pair.server.refuse(UnknownKey("SHA256:abc"))
    pair.pump()
    assert errors(pair.client_events)[0].code == ErrorCode.UNKNOWN_KEY
    assert pair.client_events[-1] == Closed(
        CloseCode.AUTH_REFUSED, "key SHA256:abc is not in authorized_operators"
    )


def test_unknown_method_gets_error_reply() -> None:
    """An unknown method gets 'unknown_method' with the request's id; the link stays open."""
    pair = Pair()
    pair.login()
    pair.server.receive_text('{"type":"request","id":7,"method":"jobs.explode"}', T0)
    (err,) = sent_errors(pair.server)
    assert (err.id, err.code) == (7, ErrorCode.UNKNOWN_METHOD)
    assert err.message == "no method 'jobs.explode'"
    assert pair.server.state is State.OPEN


def test_wrong_param_types_name_the_field() -> None:
    """Params of the wrong type get 'invalid_params' naming the bad field."""
    pair = Pair()
    pair.login()
    pair.server.receive_text(
        '{"type":"request","id":3,"method":"history.since","params":{"seq":"x"}}', T0
    )
    assert pair.server.events_received() == []
    (err,) = sent_errors(pair.server)
    assert (err.id, err.code) == (3, ErrorCode.INVALID_PARAMS)
    assert err.message == "history.since: Expected `int`, got `str` - at `params.seq`"


def test_wrong_role_is_forbidden() -> None:
    """A viewer calling an operator method gets 'forbidden' naming both roles."""
    pair = Pair()
    pair.login(Role.VIEWER)
    rid = pair.client.send_request("run", RunParams(job="backup"), T0)
    pair.pump()
    err = errors(pair.client_events)[-1]
    assert (err.id, err.code) == (rid, ErrorCode.FORBIDDEN)
    assert err.message == "run needs role operator; alice is viewer"
    assert not [e for e in pair.server_events if isinstance(e, RequestReceived)]


def test_malformed_json_gets_error_then_flood_closes() -> None:
    """Malformed frames get 'bad_request' replies until max_refused, then a close."""
    pair = Pair(Limits(max_refused=3))
    pair.login()
    for _ in range(3):
        pair.server.receive_text("{not json", T0)
    frames = pair.server.data_to_send()
    assert len(frames) == 3 and all('"code":"bad_request"' in f for f in frames)
    assert pair.server.close_requested() is None
    pair.server.receive_text("{not json", T0)
    assert pair.server.close_requested()[0] == CloseCode.POLICY_VIOLATION  # type: ignore[index]


def test_bad_frame_with_id_is_answered_with_that_id() -> None:
    """A request with a bad shape but a usable id gets its error reply under that id."""
    pair = Pair()
    pair.login()
    pair.server.receive_text('{"type":"request","id":9,"method":5}', T0)
    (err,) = sent_errors(pair.server)
    assert (err.id, err.code) == (9, ErrorCode.BAD_REQUEST)
    assert "Expected `str`, got `int` - at `$.method`" in err.message


def test_oversized_frame_closes_with_1009() -> None:
    """A frame over max_frame_bytes closes with MESSAGE_TOO_BIG before it is decoded."""
    pair = Pair(Limits(max_frame_bytes=1000))
    pair.login()
    pair.server.receive_text('{"type":"request","id":1,"method":"' + "x" * 2000 + '"}', T0)
    assert pair.server.close_requested()[0] == CloseCode.MESSAGE_TOO_BIG  # type: ignore[index]


def test_flood_is_rate_limited_then_closed() -> None:
    """Past the burst, requests get 'rate_limited'; past max_refused more, the link closes."""
    pair = Pair(Limits(requests_per_s=1, burst=5, max_refused=10, max_in_flight=100))
    pair.login()
    for i in range(1, 16):
        pair.server.receive_text(f'{{"type":"request","id":{i},"method":"jobs.list"}}', T0)
    accepted = [e for e in pair.server.events_received() if isinstance(e, RequestReceived)]
    assert len(accepted) == 5
    frames = pair.server.data_to_send()
    assert sum('"code":"rate_limited"' in f for f in frames) == 10
    assert pair.server.close_requested() is None
    pair.server.receive_text('{"type":"request","id":99,"method":"jobs.list"}', T0)
    assert pair.server.close_requested()[0] == CloseCode.FLOOD  # type: ignore[index]


def test_rate_limit_refills_with_time() -> None:
    """Tokens come back at requests_per_s: a request after a pause is served."""
    pair = Pair(Limits(requests_per_s=2, burst=1))
    pair.login()
    pair.server.receive_text('{"type":"request","id":1,"method":"jobs.list"}', T0)
    pair.server.receive_text('{"type":"request","id":2,"method":"jobs.list"}', T0)
    pair.server.receive_text('{"type":"request","id":3,"method":"jobs.list"}', T0 + 0.6)
    accepted = [e.id for e in pair.server.events_received() if isinstance(e, RequestReceived)]
    assert accepted == [1, 3]


def test_too_many_in_flight_is_rate_limited() -> None:
    """More unanswered requests than max_in_flight get 'rate_limited'."""
    pair = Pair(Limits(max_in_flight=2))
    pair.login()
    for i in (1, 2, 3):
        pair.server.receive_text(f'{{"type":"request","id":{i},"method":"jobs.list"}}', T0)
    frames = pair.server.data_to_send()
    assert len(frames) == 1 and "2 requests already waiting" in frames[0]


def test_duplicate_pending_id_closes() -> None:
    """Reusing an id that is still waiting for a reply is a violation that closes."""
    pair = Pair()
    pair.login()
    pair.server.receive_text('{"type":"request","id":1,"method":"jobs.list"}', T0)
    pair.server.receive_text('{"type":"request","id":1,"method":"jobs.list"}', T0)
    assert pair.server.close_requested()[0] == CloseCode.POLICY_VIOLATION  # type: ignore[index]


def test_second_hello_is_a_violation() -> None:
    """A hello on an open connection closes it."""
    pair = Pair()
    pair.login()
    pair.server.receive_text(
        '{"type":"hello","version":1,"client":"x","public_key":"k","challenge":"c","proof":"p"}',
        T0,
    )
    assert pair.server.close_requested()[0] == CloseCode.POLICY_VIOLATION  # type: ignore[index]


def test_client_refuses_garbage_from_agent() -> None:
    """A client that receives a non-message from the agent closes with a reason."""
    client = Connection("client")
    client.receive_text("[1,2,3]", T0)
    assert client.close_requested()[0] == CloseCode.POLICY_VIOLATION  # type: ignore[index]
    assert violations(client.events_received())


def test_client_ignores_unknown_topic() -> None:
    """An event on a topic this console does not know is ignored, not fatal."""
    pair = Pair()
    pair.login()
    pair.client.receive_text('{"type":"event","topic":"future","payload":{}}', T0)
    assert pair.client.events_received() == [] and pair.client.close_requested() is None


def test_bad_result_shape_fails_only_that_request() -> None:
    """A result that does not match the method's result type fails that request only."""
    pair = Pair()
    pair.login()
    rid = pair.client.send_request("run", RunParams(job="x"), T0)
    pair.client.receive_text(f'{{"type":"result","id":{rid},"result":{{"nope":1}}}}', T0)
    (event,) = pair.client.events_received()
    assert isinstance(event, ErrorReceived) and event.code == ErrorCode.BAD_RESPONSE
    assert pair.client.state is State.OPEN


def test_everything_after_close_is_ignored() -> None:
    """Frames arriving after close produce nothing."""
    pair = Pair()
    pair.login()
    pair.server.close(CloseCode.GOING_AWAY, "stopping")
    pair.server.receive_text('{"type":"request","id":1,"method":"jobs.list"}', T0)
    assert pair.server.events_received() == [] and pair.server.data_to_send() == []


def test_error_code_for_maps_subclasses_to_listed_codes() -> None:
    """A SquError subclass with an unlisted code travels as its nearest listed parent's."""
    from shared.errors import NotFound

    class UnknownWidget(NotFound):
        code = "unknown_widget"

    assert error_code_for(UnknownWidget("gone")) is ErrorCode.NOT_FOUND
    assert error_code_for(UnknownJob("x")) is ErrorCode.UNKNOWN_JOB


def test_catalogue_types_are_structs() -> None:
    """Every method's params and result, and every topic's payload, is a msgspec Struct."""
    for spec in METHODS.values():
        assert issubclass(spec.params, msgspec.Struct) and issubclass(spec.result, msgspec.Struct)
    for topic in TOPICS.values():
        assert issubclass(topic.payload, msgspec.Struct)


def test_hello_received_carries_the_challenge() -> None:
    """The client's HelloReceived holds the agent's name and challenge."""
    pair = Pair()
    got = pair.start()
    assert isinstance(got, HelloReceived)
    assert got.hello.agent == "db1" and got.hello.challenge  # type: ignore[union-attr]


def test_cancel_params_round_trip() -> None:
    """cancel's ExecutionId params reach the server unchanged."""
    pair = Pair()
    pair.login()
    rid = pair.client.send_request("cancel", ExecutionId(execution_id="E9"), T0)
    pair.pump()
    assert pair.server_events[-1] == RequestReceived(rid, "cancel", ExecutionId(execution_id="E9"))


@pytest.mark.parametrize("where", ["frame", "params"])
def test_deep_nesting_is_a_bad_request_not_a_crash(where: str) -> None:
    """Regression: 200k nested brackets raised RecursionError out of receive_text."""
    pair = Pair()
    pair.login()
    deep = "[" * 200_000 + "]" * 200_000
    frame = (
        '{"type":"request","id":1,"method":"jobs.list","junk":' + deep + "}"
        if where == "frame"
        else ('{"type":"request","id":1,"method":"jobs.list","params":' + deep + "}")
    )
    pair.server.receive_text(frame, T0)
    (err,) = sent_errors(pair.server)
    assert err.code == ErrorCode.BAD_REQUEST
    assert pair.server.state is State.OPEN


def test_closed_is_reported_once() -> None:
    """A second receive_closed (both ends closing) produces no second Closed event."""
    pair = Pair()
    pair.login()
    pair.client.receive_closed(1000, "bye")
    pair.client.events_received()
    pair.client.receive_closed(1006, "again")
    assert pair.client.events_received() == []
