"""One error tree for squ-cron.

Every error carries a stable wire ``code`` and builds its own human message in
the constructor, so the place that raises never formats text and the place that
reports (CLI, protocol session, TUI toast) never guesses.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "Conflict",
    "IllegalTransition",
    "InvalidJob",
    "InvalidSchedule",
    "NotFound",
    "SquError",
    "UnknownExecution",
    "UnknownJob",
]


class SquError(Exception):
    """Root of every error squ-cron raises on purpose."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The error as it travels on the wire and in ``--json`` output."""
        return {"code": self.code, "message": self.message, **self.details}


class InvalidSchedule(SquError):
    """A cron expression, macro or ``at`` time that cannot be used."""

    code = "invalid_schedule"

    def __init__(self, expr: str, why: str) -> None:
        super().__init__(f"{expr!r}: {why}", expr=expr, why=why)
        self.expr = expr
        self.why = why


class InvalidJob(SquError):
    """A job definition with a field that is wrong; names the field and the place."""

    code = "invalid_job"

    def __init__(self, field: str, why: str, *, where: str = "", value: Any = None) -> None:
        prefix = f"{where}: " if where else ""
        shown = "" if value is None else f" (got {value!r})"
        super().__init__(f"{prefix}{field}: {why}{shown}", field=field, where=where)
        self.field = field
        self.why = why
        self.where = where


class NotFound(SquError):
    code = "not_found"


class UnknownJob(NotFound):
    code = "unknown_job"

    def __init__(self, name: str, agent: str = "") -> None:
        on = f" on agent {agent}" if agent else ""
        super().__init__(f"no job named {name!r}{on}", job=name, agent=agent)


class UnknownExecution(NotFound):
    code = "unknown_execution"

    def __init__(self, execution_id: str, agent: str = "") -> None:
        on = f" on agent {agent}" if agent else ""
        super().__init__(f"no execution {execution_id!r}{on}", execution=execution_id)


class Conflict(SquError):
    code = "conflict"


class IllegalTransition(SquError):
    """Our own misuse of the status machine: a bug, never remote input."""

    code = "illegal_transition"

    def __init__(self, state: str, event: str) -> None:
        super().__init__(f"cannot {event} an execution that is {state}", state=state, event=event)
