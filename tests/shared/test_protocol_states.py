"""Every (side, state) against every incoming message kind: the table decides, never a raise."""

from __future__ import annotations

import pytest

from shared.enums import Role
from shared.protocol import (
    TRANSITIONS,
    Connection,
    ProtocolViolation,
    State,
    Step,
    make_client_hello,
)
from tests.shared.protocol_helpers import T0, Pair, operator

SERVER_FRAMES = {
    Step.RECV_HELLO: (
        '{"type":"hello","version":1,"client":"x","public_key":"k","challenge":"c","proof":"p"}'
    ),
    Step.RECV_REQUEST: '{"type":"request","id":1,"method":"jobs.list"}',
}
CLIENT_FRAMES = {
    Step.RECV_HELLO: (
        '{"type":"hello","version":1,"agent":"a","agent_version":"1","challenge":"c",'
        '"issued_at":0,"expires_at":1}'
    ),
    Step.RECV_WELCOME: '{"type":"welcome","operator":"o","role":"viewer","limits":{}}',
    Step.RECV_RESULT: '{"type":"result","id":1,"result":{}}',
    Step.RECV_ERROR: '{"type":"error","id":null,"code":"x","message":"m"}',
    Step.RECV_EVENT: '{"type":"event","topic":"jobs","payload":{"name":"j","version":1}}',
}


def connection_in(side: str, state: State) -> Connection:
    """A Connection of ``side`` brought to ``state`` by real exchanges."""
    pair = Pair()
    key, op = operator("alice", Role.ADMIN)
    conn = pair.server if side == "server" else pair.client
    if state is State.NEW:
        return conn
    got = pair.start()
    if state in (State.HELLO_SENT, State.HELLO_RECEIVED):
        return conn
    pair.client.send_hello(make_client_hello(got.hello, key, client="t"))  # type: ignore[arg-type]
    if side == "client" and state is State.AUTHENTICATING:
        return conn
    pair.pump()
    if state is State.AUTHENTICATING:
        return conn
    pair.server.accept(op.name, op.role)
    pair.pump()
    assert conn.state is State.OPEN
    conn.data_to_send()
    conn.events_received()
    return conn


CASES = [
    (side, state, step)
    for side, frames, states in (
        ("server", SERVER_FRAMES, (State.NEW, State.HELLO_SENT, State.AUTHENTICATING, State.OPEN)),
        (
            "client",
            CLIENT_FRAMES,
            (State.NEW, State.HELLO_RECEIVED, State.AUTHENTICATING, State.OPEN),
        ),
    )
    for state in states
    for step in frames
    if (side, state, step) not in TRANSITIONS
]


@pytest.mark.parametrize(("side", "state", "step"), CASES)
def test_message_not_in_table_is_a_violation_that_closes(
    side: str, state: State, step: Step
) -> None:
    """A message the table does not allow in this state: ProtocolViolation and a close."""
    conn = connection_in(side, state)
    frame = (SERVER_FRAMES if side == "server" else CLIENT_FRAMES)[step]
    conn.receive_text(frame, T0)
    assert any(isinstance(e, ProtocolViolation) for e in conn.events_received())
    assert conn.close_requested() is not None
    assert conn.state is State.CLOSED


@pytest.mark.parametrize(
    ("side", "state"),
    [("server", s) for s in (State.NEW, State.HELLO_SENT, State.AUTHENTICATING, State.OPEN)]
    + [("client", s) for s in (State.NEW, State.HELLO_RECEIVED, State.AUTHENTICATING, State.OPEN)],
)
def test_reaching_each_state(side: str, state: State) -> None:
    """Each state of each side is reachable by real exchanges (the table is not dead code)."""
    assert connection_in(side, state).state is state
