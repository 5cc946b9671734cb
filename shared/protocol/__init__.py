"""The wire protocol, sans-I/O: typed messages, method catalogue, connection state machine.

Import from here: ``from shared.protocol import Connection, METHODS, ...``.
See docs/protocol.md for every method, topic and error code.
"""

from __future__ import annotations

from shared.protocol.auth import (
    ChallengeBook,
    ExpiredProof,
    ReplayedProof,
    check_proof,
    make_client_hello,
    new_server_hello,
    proof_payload,
)
from shared.protocol.catalogue import METHODS, TOPICS, MethodSpec, TopicSpec
from shared.protocol.connection import (
    TRANSITIONS,
    Closed,
    Connection,
    ErrorReceived,
    Event,
    EventPushed,
    HelloReceived,
    ProtocolViolation,
    RequestReceived,
    ResultReceived,
    State,
    Step,
    Welcomed,
)
from shared.protocol.errors import (
    CloseCode,
    ErrorCode,
    OversizedMessage,
    ProtocolMisuse,
    error_code_for,
)
from shared.protocol.history import SyncPlan, make_batch, plan_sync
from shared.protocol.limits import Limits
from shared.protocol.messages import *  # noqa: F403
from shared.protocol.messages import __all__ as _messages_all

__all__ = [
    "METHODS",
    "TOPICS",
    "TRANSITIONS",
    "ChallengeBook",
    "CloseCode",
    "Closed",
    "Connection",
    "ErrorCode",
    "ErrorReceived",
    "Event",
    "EventPushed",
    "ExpiredProof",
    "HelloReceived",
    "Limits",
    "MethodSpec",
    "OversizedMessage",
    "ProtocolMisuse",
    "ProtocolViolation",
    "ReplayedProof",
    "RequestReceived",
    "ResultReceived",
    "State",
    "Step",
    "SyncPlan",
    "TopicSpec",
    "Welcomed",
    "check_proof",
    "error_code_for",
    "make_batch",
    "make_client_hello",
    "new_server_hello",
    "plan_sync",
    "proof_payload",
    *_messages_all,
]
