"""Stable wire error codes and close codes.

Every error reply carries a ``code`` from ``ErrorCode`` and a human
``message``. A ``SquError`` raised by a handler travels with its own ``.code``
when that code is listed here; a subclass whose code is not listed travels as
the nearest listed code of its parents (``error_code_for``), so a new error
class never sends an undocumented code. docs/protocol.md lists every member
(a test fails when one is missing).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any

from shared.errors import SquError

__all__ = [
    "CloseCode",
    "ErrorCode",
    "OversizedMessage",
    "ProtocolMisuse",
    "error_code_for",
]


class ErrorCode(StrEnum):
    # Frames and requests
    BAD_REQUEST = "bad_request"  # not JSON, or not a message this side accepts
    INVALID_PARAMS = "invalid_params"  # params of the wrong type or shape
    UNKNOWN_METHOD = "unknown_method"
    TOO_LARGE = "too_large"  # a frame or reply over Limits.max_frame_bytes
    RATE_LIMITED = "rate_limited"  # over Limits.requests_per_s / burst / max_in_flight
    # Hello and authentication
    UNSUPPORTED_VERSION = "unsupported_version"
    UNAUTHENTICATED = "unauthenticated"  # a request before a successful hello
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED_PROOF = "expired_proof"
    REPLAYED_PROOF = "replayed_proof"
    FORBIDDEN = "forbidden"  # the operator's role may not call this method
    # Client-side outcomes of a request (never sent by an agent)
    TIMEOUT = "timeout"
    CLOSED = "closed"
    BAD_RESPONSE = "bad_response"
    # Domain errors (shared/errors.py and the agent's own)
    ERROR = "error"
    NOT_FOUND = "not_found"
    UNKNOWN_JOB = "unknown_job"
    UNKNOWN_EXECUTION = "unknown_execution"
    UNKNOWN_SCRIPT = "unknown_script"
    CONFLICT = "conflict"
    JOB_DECLARED_IN_FILE = "job_declared_in_file"  # declared in jobs.d: edit that file
    INVALID_JOB = "invalid_job"
    INVALID_SCHEDULE = "invalid_schedule"
    INVALID_PARAMETER = "invalid_parameter"
    ILLEGAL_TRANSITION = "illegal_transition"
    INVALID_QUERY = "invalid_query"
    APPROVAL_REFUSED = "approval_refused"  # details.reason: shared.approvals.Reason
    UNAVAILABLE = "unavailable"  # the agent cannot take new work now (stopping)
    DISK_FULL = (
        "disk_full"  # the agent's disk is full: nothing new starts, nothing recorded is lost
    )
    INTERNAL = "internal"  # a bug in the agent; logged there, no details sent


def error_code_for(exc: SquError) -> ErrorCode:
    """The wire code for ``exc``: its own code if listed, else the nearest listed parent's."""
    for cls in type(exc).__mro__:
        code = getattr(cls, "code", None)
        if isinstance(code, str) and code in ErrorCode._value2member_map_:
            return ErrorCode(code)
    return ErrorCode.ERROR


class CloseCode(IntEnum):
    """WebSocket close codes we send; the reason text always says why in words."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    POLICY_VIOLATION = 1008  # malformed frames past the budget, requests before hello
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013  # too many connections
    AUTH_REFUSED = 4001  # unknown key, bad signature, expired or replayed proof
    UNSUPPORTED_VERSION = 4002
    HELLO_TIMEOUT = 4008
    FLOOD = 4029  # requests kept coming past the rate limit
    SLOW_READER = 4030  # the peer stopped reading what we send


class ProtocolMisuse(SquError):
    """Our own code used a Connection wrongly (a bug): raised at once, never sent."""

    code = "internal"

    def __init__(self, what: str) -> None:
        super().__init__(f"protocol misuse: {what}", what=what)


class OversizedMessage(SquError):
    """A reply or event that would not fit in one frame; the sender should page it."""

    code = "too_large"

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(
            f"{what} is {size} bytes, over the {limit}-byte frame limit", size=size, limit=limit
        )


def details_of(exc: SquError) -> dict[str, Any]:
    """The JSON-safe details of ``exc`` to send beside its message."""
    return {k: v for k, v in exc.details.items() if isinstance(v, str | int | float | bool)}
