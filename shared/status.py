"""The execution status machine of DESIGN.md, as a table.

``transition(state, event)`` is the only way a status changes; the store calls
it before writing, so an illegal step is a bug that raises at once.
"""

from __future__ import annotations

from enum import StrEnum

from shared.enums import ExecutionStatus as S
from shared.errors import IllegalTransition

__all__ = ["TRANSITIONS", "Event", "transition"]


class Event(StrEnum):
    REQUEST_APPROVAL = "request_approval"
    APPROVE = "approve"
    QUEUE = "queue"
    START = "start"
    SUCCEED = "succeed"
    FAIL = "fail"
    TIME_OUT = "time_out"
    CANCEL = "cancel"
    SKIP = "skip"
    LOSE = "lose"


TRANSITIONS: dict[tuple[S, Event], S] = {
    (S.PENDING, Event.REQUEST_APPROVAL): S.AWAITING_APPROVAL,
    (S.PENDING, Event.QUEUE): S.QUEUED,
    (S.PENDING, Event.SKIP): S.SKIPPED,
    (S.PENDING, Event.CANCEL): S.CANCELLED,
    (S.AWAITING_APPROVAL, Event.APPROVE): S.QUEUED,
    # DESIGN.md: an approval window that passes makes the run skipped.
    (S.AWAITING_APPROVAL, Event.SKIP): S.SKIPPED,
    (S.AWAITING_APPROVAL, Event.CANCEL): S.CANCELLED,
    (S.QUEUED, Event.START): S.RUNNING,
    (S.QUEUED, Event.SKIP): S.SKIPPED,
    (S.QUEUED, Event.CANCEL): S.CANCELLED,
    # A queued row whose spawn cannot be proven nor retried (reboot, spawn error).
    (S.QUEUED, Event.LOSE): S.LOST,
    (S.QUEUED, Event.FAIL): S.FAILED,
    (S.RUNNING, Event.SUCCEED): S.SUCCESS,
    (S.RUNNING, Event.FAIL): S.FAILED,
    (S.RUNNING, Event.TIME_OUT): S.TIMEOUT,
    (S.RUNNING, Event.CANCEL): S.CANCELLED,
    (S.RUNNING, Event.LOSE): S.LOST,
}


def transition(state: S, event: Event) -> S:
    """The state after ``event``; raises ``IllegalTransition`` if the table has no such step."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state.value, event.value) from None


def table_markdown() -> str:
    """The table as Markdown, for docs/ (a test keeps the docs in step)."""
    rows = ["| from | event | to |", "|---|---|---|"]
    rows += [f"| {a} | {e} | {b} |" for (a, e), b in TRANSITIONS.items()]
    return "\n".join(rows)
