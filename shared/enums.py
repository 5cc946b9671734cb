"""The vocabulary shared by agent, console and wire."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AlertKind",
    "Approval",
    "Backoff",
    "Concurrency",
    "ExecutionStatus",
    "Misfire",
    "RetryOn",
    "Role",
    "Trigger",
]


class ExecutionStatus(StrEnum):
    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    LOST = "lost"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset(
    {
        ExecutionStatus.SUCCESS,
        ExecutionStatus.FAILED,
        ExecutionStatus.TIMEOUT,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.SKIPPED,
        ExecutionStatus.LOST,
    }
)


class Trigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    RETRY = "retry"
    DEPENDENCY = "dependency"
    DISPATCH = "dispatch"
    API = "api"


class Concurrency(StrEnum):
    ALLOW = "allow"
    FORBID = "forbid"
    REPLACE = "replace"


class Misfire(StrEnum):
    SKIP = "skip"
    RUN_ONCE = "run_once"
    RUN_ALL = "run_all"


class Backoff(StrEnum):
    FIXED = "fixed"
    EXPONENTIAL = "exponential"


class RetryOn(StrEnum):
    FAILED = "failed"
    TIMEOUT = "timeout"


class Approval(StrEnum):
    NONE = "none"
    MANUAL = "manual"
    ALWAYS = "always"


class Role(StrEnum):
    """Operator roles; ``coordinator`` is for agents driving steps on peers."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"
    COORDINATOR = "coordinator"

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may do."""
        if self is Role.COORDINATOR:
            return needed in (Role.VIEWER, Role.OPERATOR, Role.COORDINATOR)
        if needed is Role.COORDINATOR:
            return self is Role.ADMIN
        return _RANK[self] >= _RANK[needed]


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.APPROVER: 2, Role.ADMIN: 3}


class AlertKind(StrEnum):
    """What an alert is about (docs/alerts.md); decided by ``shared.alerts``."""

    FAILED = "failed"
    TIMED_OUT = "timed_out"
    RETRYING = "retrying"
    RETRIES_EXHAUSTED = "retries_exhausted"
    RECOVERED = "recovered"
    LOST = "lost"
    SKIPPED = "skipped"
    MISSED = "missed"
    LONG_RUNNING = "long_running"
