"""The execution status machine of DESIGN.md, as a table.

``transition(state, event)`` is the only way a status changes; the store calls
it before writing, so an illegal step is a bug that raises at once.
"""

from __future__ import annotations

from enum import StrEnum

from shared.enums import ExecutionStatus as S
from shared.errors import IllegalTransition
from shared.models import Execution

__all__ = ["TRANSITIONS", "WAIT_EXIT_CODES", "Event", "transition", "wait_exit_code"]


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


# timeout(1)-style codes for outcomes that have no exit code of the job's own.
WAIT_EXIT_CODES: dict[S, int] = {S.TIMEOUT: 124, S.CANCELLED: 130, S.LOST: 125, S.SKIPPED: 3}


def wait_exit_code(ex: Execution) -> int:
    """The code ``run --wait`` exits with (agent and console alike): the job's own if it has one."""
    if ex.status is S.SUCCESS:
        return 0
    if ex.status in WAIT_EXIT_CODES:
        return WAIT_EXIT_CODES[ex.status]
    if ex.exit_code is not None:
        return ex.exit_code
    if ex.signal:
        return 128 + ex.signal
    return 1
