"""Fuzz the decoder: receive_text never raises, whatever arrives, in any state (hypothesis)."""

from __future__ import annotations

import json

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.enums import Role
from shared.protocol import METHODS, Connection, Limits, State
from tests.shared.protocol_helpers import T0, Pair

_LIMITS = Limits(max_refused=1000, burst=10_000)
# msgspec raises RecursionError on absurd nesting; these must be bad frames, not crashes.
_DEEP = [
    "[" * 100_000 + "]" * 100_000,
    '{"type":"request","id":1,"method":"jobs.list","params":'
    + '{"a":' * 50_000
    + "1"
    + "}" * 50_001,
    '{"type":"result","id":1,"result":' + "[" * 100_000 + "]" * 100_000 + "}",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
frames = st.one_of(
    st.sampled_from(_DEEP),
    st.text(max_size=300),
    st.binary(max_size=300),
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["request", "hello", "result", "error", "event", "welcome"]),
            "id": st.one_of(st.integers(), st.text(max_size=5), st.none()),
            "method": st.sampled_from([*METHODS, "nope"]),
            "params": json_values,
        }
    ).map(json.dumps),
)


def states() -> list[tuple[str, Connection]]:
    fresh_server = Connection("server", limits=_LIMITS)
    fresh_client = Connection("client", limits=_LIMITS)
    pair = Pair(_LIMITS)
    pair.login(Role.ADMIN)
    waiting = Pair(_LIMITS)
    waiting.start()
    return [
        ("server-new", fresh_server),
        ("client-new", fresh_client),
        ("server-open", pair.server),
        ("client-open", pair.client),
        ("server-hello-sent", waiting.server),
        ("client-hello-received", waiting.client),
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(frames, min_size=1, max_size=5))
def test_receive_text_never_raises(batch: list[str | bytes]) -> None:
    """No frame, in any state, makes receive_text raise; every reply is a valid message."""
    for _, conn in states():
        for frame in batch:
            conn.receive_text(frame, T0)
        conn.tick(T0 + 1)
        for out in conn.data_to_send():
            assert isinstance(msgspec.json.decode(out), dict)
        assert conn.state in State


@settings(max_examples=100, deadline=None)
@given(code=st.integers(min_value=0, max_value=5000), reason=st.text(max_size=200))
def test_receive_closed_never_raises(code: int, reason: str) -> None:
    """receive_closed with any code and reason ends in CLOSED without raising."""
    for _, conn in states():
        conn.receive_closed(code, reason)
        assert conn.state is State.CLOSED
